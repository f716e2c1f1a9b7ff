"""Training runs outside the web process: the persisted queue every page and terminal share
(:mod:`.queue`), the executors that take runs off it (:mod:`.executor`, :mod:`.ray_executor`),
a run started from a terminal (:mod:`.inline`), the child process that trains (:mod:`.process`,
:mod:`.child`) and sweeps (:mod:`.sweep`)."""
