"""Starting pod processes.

    spawner        detached root pods, the ready pipe, a pod's environment
    forkserver     a plain process holding the runtime, forking pods in milliseconds
    forkclient     the pod's side of its fork server
    child_process  a child pod seen from its parent: started, watched, stopped
    agent_command  checking an agent command before a pod is spawned with it

The seam between a pod and how its children are started: a local fork server today
(``docs/multi-host.md`` says what another backend would have to provide).
"""
