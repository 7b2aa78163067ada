"""The asyncio body: HTTP/1.1 and HTTP/2 drivers, the pool and the pool manager, over the
same brain (lifecycle.poolstate) and protocol code as sync/."""
