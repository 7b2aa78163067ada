"""Sans-I/O protocol layer: bytes in, events out. No socket, no clock, no ``await``."""
