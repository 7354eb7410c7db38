"""Recovery: finish a run that stopped, or branch off it, without paying again for what it did.

    routes.py         POST /runs/{id}/resume, /abort and /fork
    service.py        what each does, on the runs' store and Step Functions
    compatibility.py  whether a run's checkpoints still fit a workflow version
    models.py         the requests; the answers are the runs' own models
    errors.py         the 4xx answers

A resumed run keeps its run id and starts a new execution (the next `execution` number in
`$.run`): its completed steps return their checkpoints, and a lease an earlier execution left is
taken over at once (sutram.store.checkpoints). A fork is a new run that starts with copies of its
parent's checkpoints of every step before the fork point.
"""
