"""JUnit XML, the report format CI systems read: its suite, its cases, its text.

``callops smoke`` writes one ``testcase`` per call; a suite's counts and a case's time are written
as JUnit readers expect them (integers, seconds with three decimals).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


def testsuite(name: str, *, tests: int, failures: int, skipped: int, seconds: float) -> ET.Element:
    """The root ``testsuite`` element with its counts and its duration."""
    return ET.Element(
        "testsuite",
        name=name,
        tests=str(tests),
        failures=str(failures),
        skipped=str(skipped),
        time=f"{seconds:.3f}",
    )


def testcase(suite: ET.Element, classname: str, name: str, seconds: float | None = None) -> ET.Element:
    """One ``testcase`` of ``suite``, with its duration when there is one."""
    attributes = {"classname": classname, "name": name}
    if seconds is not None:
        attributes["time"] = f"{seconds:.3f}"
    return ET.SubElement(suite, "testcase", attributes)


def xml_text(suite: ET.Element) -> str:
    """The document: XML declaration, the suite, a final newline."""
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


__all__ = ["testcase", "testsuite", "xml_text"]
