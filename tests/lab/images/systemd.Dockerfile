# restoreops.dr lab: Debian 12 with systemd as PID 1 (the base layer is a local debootstrap import).
ARG BASE
FROM ${BASE}
ENV container=docker DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd systemd-sysv dbus ca-certificates python3-apt sudo \
      procps iproute2 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && systemctl mask systemd-logind.service getty.target console-getty.service systemd-udevd.service \
      systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
 && rm -f /etc/machine-id && touch /etc/machine-id
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
