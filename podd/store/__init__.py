"""What pods keep on disk, and how it is written and read.

    paths      names, the runtime root, private directories, long socket paths
    atomic     replacing a file so that a crash leaves the old or the new one
    journal    a pod's state changes, appended, replayed by a restart
    records    a pod's files as a command-line call reads them (``pod.json``, registry)
    kept       what outlives a pod: the agent's state dir, output, turn records
    output     reading a pod's output log
    leftovers  removing what dead pods leave behind

Nothing here imports an event loop; the pod runtime calls it off its loop.
"""
