"""digitlab's benchmarks: ``python -m bench``. They time the package and the app from outside.

They need Playwright and psutil (``bench/requirements.txt``); the ``digitlab`` package needs neither.
"""
