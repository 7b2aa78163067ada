"""Drop-in transports: tether's pools under code written for requests or httpx.

``tether.adapters.requests`` (``TetherAdapter``, ``session()``, ``patch()``) needs the
``tether[requests]`` extra; ``tether.adapters.httpx`` (``TetherTransport``) needs
``tether[httpx]``. Importing this package imports neither library: each lives in its own module,
imported only when asked for.
"""
