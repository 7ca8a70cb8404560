# restoreops.dr lab: the systemd image with the DR tools preinstalled, for containers on `--network none`.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends borgbackup restic rsnapshot rclone postgresql postgresql-client \
      python3-psycopg2 python3-psycopg python3-boto3 cryptsetup-bin curl rsync openssh-client \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
CMD ["/lib/systemd/systemd"]
