"""A real browser in the call: Chromium driven over the DevTools protocol, always in an isolated
network namespace (Chromium contacts Google services on its own, whatever its flags).

* :mod:`.netns` -- the isolated namespace (only ``lo``) and the guard that refuses the root one;
* :mod:`.cdp` -- the DevTools protocol framing over ``--remote-debugging-pipe`` (sans-I/O);
* :mod:`.chromium` -- launching Debian's Chromium and driving its pages;
* :mod:`.consumer` -- the consumer role played by Chromium (the tutorial's page, the call app).
"""
