"""What the tests share: the app behind a test client or a live server (``api``), the
console's sign-in (``console``), the store opened directly (``store``), the Kafka side
(``stream``), ``hub`` as a real process (``hub_process``), local processes and ports
(``processes``, also used by ``bench``), hostile text (``hostile``), a threaded uvicorn
(``servers``), fakes for the ports of the runtime core (``fakes``). Fixtures are in
``tests/conftest.py``; providers' loopback peers in ``tests/peers``."""
