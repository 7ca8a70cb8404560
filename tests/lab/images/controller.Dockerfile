# restoreops.dr lab: the ansible-core 2.21 controller (Debian 13, Python 3.13), on the trixie tools image so that the
# integration targets find the newer tool generation (borg 1.4, restic 0.18, PostgreSQL 17) beside it. The venv is
# built from requirements-2.21.txt (copied into the build context by `tests/lab/lab`), with the machine's pip CA
# bundle and index, which are not kept in the image.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv python3-dev gcc libc6-dev git make rsync \
      openssh-client \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY requirements-2.21.txt /opt/restoreops/requirements-2.21.txt
COPY pip/ /tmp/pip/
ARG PIP_INDEX_URL=
RUN set -e; export PIP_CERT=/tmp/pip/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180; \
    [ -s /tmp/pip/ca.crt ] || unset PIP_CERT; [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    python3 -m venv /opt/restoreops/venv-2.21 \
 && /opt/restoreops/venv-2.21/bin/pip install -q --upgrade pip \
 && /opt/restoreops/venv-2.21/bin/pip install -q -r /opt/restoreops/requirements-2.21.txt \
 && touch /opt/restoreops/venv-2.21/.installed \
 && rm -rf /tmp/pip /root/.cache/pip
ENV PATH=/opt/restoreops/venv-2.21/bin:$PATH
