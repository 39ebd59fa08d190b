"""The docker backend: the stack as containers (testcontainers-python, host networking).

* :mod:`.images` — the images (``docker/``), their content-hash tags, building them;
* :mod:`.engine` — is a Docker engine answering, and a client for it;
* :mod:`.containers` — one service container: start, wait until it answers, restart, kill, logs;
* :mod:`.stack` — :class:`DockerBackend` and :class:`DockerStack`;
* :mod:`.cleanup` — containers found by label and removed (Ryuk cannot run here).
"""
