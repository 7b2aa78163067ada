"""The threaded body: connection drivers, the pool and the pool manager, driving the brain."""
