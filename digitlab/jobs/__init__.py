"""Training runs outside the web process: the registry the pages use (:mod:`.registry`), the child
process that trains (:mod:`.child`) and the machine-wide lock both it and the CLI take (:mod:`.locking`)."""
