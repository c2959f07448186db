"""Queue patterns in Lease: a worker serves every queue whose name matches, as queues appear.

``matching`` says what a pattern is (syntax, matching, coverage by a token's pattern);
``index`` keeps this process's view of the known queues, which of them may hold ready tasks,
and the long polls waiting on patterns; ``selection`` turns a Lease's entries into the few
concrete queues one call asks Redis about; ``refresher`` keeps the index current.
"""
