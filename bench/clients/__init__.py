"""Benchmark clients for tether and its peers: one module per client library.

Each module exposes factories that ``clients.registry`` names; ``clients.runner``
runs one (client, scenario) pair in a subprocess and prints one JSON line.
"""
