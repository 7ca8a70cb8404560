# restoreops.dr lab: a lab host reached over SSH with host networking (the tools image + openssh-server).
# Every server on it binds only this host's own loopback address, which `lab host` writes per container into
# /etc/restoreops-lab (mounted read-only): sshd never starts without it, PostgreSQL falls back to its unix socket.
# PostgreSQL keeps port 5432 (pg_createcluster picks another one when the build machine has 5432 in use).
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
COPY host/ /
# policy-rc.d: the package's postinst must not start an sshd during the build (it would listen on the machine).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends openssh-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /etc/ssh/ssh_host_*_key* \
 && systemctl mask ssh.socket \
 && for d in /etc/postgresql/*/main/conf.d; do \
      cp /usr/local/share/restoreops-lab/postgresql.conf "$d/00-restoreops-lab.conf"; done \
 && sed -i "s/^port = .*/port = 5432/" /etc/postgresql/*/main/postgresql.conf
CMD ["/lib/systemd/systemd"]
