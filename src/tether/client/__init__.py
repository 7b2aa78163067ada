"""User concerns above the pools: the Session and the one-shot functions, and which proxy a
request takes (``proxies``)."""
