"""A real browser in the call: Chromium driven over the DevTools protocol, always in a network
namespace with no route out (Chromium contacts Google services on its own, whatever its flags).

* :mod:`.isolation` -- the isolated namespace (only ``lo``) and the guard that refuses a namespace
  with a way out of the test's own namespaces;
* :mod:`.cdp` -- the DevTools protocol framing over ``--remote-debugging-pipe`` (sans-I/O);
* :mod:`.chromium` -- launching Debian's Chromium and driving its pages;
* :mod:`.page_leg` -- what a browser leg of a call is (one page, its getStats, its phases);
* :mod:`.consumer_page` -- the consumer role played by Chromium (the tutorial's page, the call app);
* :mod:`.agent_page` -- the agent's media played by Chromium (the Agent Workspace stand-in).
"""
