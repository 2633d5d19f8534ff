"""Starting pod processes.

    spawner         detached root pods, the ready pipe, a pod's environment
    forkserver      fork servers, processes holding the runtime that fork pods in
                    milliseconds: the overview, and the names callers use
    pod_forkserver  a pod's own fork server: its loop, its wire with the pod, the clone
    forked_pod      what a forked process does to become a pod
    prestart        a cold root spawn's pod, forked as the command starts
    detached        forking a process that outlives its parent (new session, init above)
    root_forkserver the root's fork server: root pods for the CLI, born with the first
    forkclient      the pod's side of its fork server
    child_process   a child pod seen from its parent: started, watched, stopped
    agent_command   checking an agent command before a pod is spawned with it

The seam between a pod and how its children are started: a local fork server today
(``docs/multi-host.md`` says what another backend would have to provide).
"""
