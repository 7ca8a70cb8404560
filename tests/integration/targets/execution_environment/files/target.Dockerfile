# restoreops.dr EE test: a managed host for the execution environment to reach over SSH (borg, restic, sshd).
# Nothing starts at build time (policy-rc.d), and the test starts sshd on its own loopback address only.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends openssh-server borgbackup restic python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/sshd && ssh-keygen -A
