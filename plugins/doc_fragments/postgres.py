# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # PostgreSQL connection options, named as in community.postgresql.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - When neither O(login_host) nor O(login_unix_socket) is set, libpq uses its default unix socket.
    type: str
    aliases: [host, login_hostname]
  login_unix_socket:
    description:
      - Directory of the server's unix socket (for example V(/var/run/postgresql)). Takes precedence over
        O(login_host).
    type: str
    aliases: [unix_socket]
  port:
    description: Port of the server (also the suffix of the unix socket file).
    type: int
    default: 5432
    aliases: [login_port]
  login_user:
    description: The role to log in as. It needs C(pg_monitor) (or superuser) to read the archiver state.
    type: str
    default: postgres
    aliases: [login]
  login_password:
    description:
      - Password of O(login_user). Handed to libpq as a connection keyword, never placed in a connection string,
        a command line or a message.
    type: str
    aliases: [password]
  login_db:
    description: Database to connect to.
    type: str
    default: postgres
    aliases: [db, database]
  connect_timeout:
    description: Seconds to wait for the connection before giving up.
    type: int
    default: 10
  ssl_mode:
    description: libpq's C(sslmode) for the connection.
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
requirements:
  - psycopg >= 3.1 (the C(psycopg) Python package) on the managed node
"""
