"""Everything qfrun knows about platforms.

``protocol`` is the seam the executor and the stage modules use; it imports nothing heavy. The HTTP
client that implements it (``client``, ``http``, ``auth``) imports httpx and is only loaded by the CLI.
"""
