"""Facts about OS processes, and podd's own process titles.

facts    start times, liveness and killing, through psutil (the pods)
procfs   the same facts read straight from ``/proc`` (the lean command line)
title    ``podd: pod NAME [ROOT]`` and the like, in ``ps`` and ``top``
"""
