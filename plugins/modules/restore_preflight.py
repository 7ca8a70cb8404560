#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restore_preflight
short_description: Check that a restore target is an isolated, empty replacement before anything moves
version_added: 0.2.0
description:
  - The first step of the restore protocol, on the target host, in one read-only run.
  - Refuses (fails) a target that is marked as production (O(is_production), or the file O(production_marker)), that
    already holds data in one of O(app_data_paths) (unless an interrupted or completed restore of this host recorded
    in O(state_file) put it there), or that can reach one of the production endpoints in O(isolation_probes). Every
    reason is named in one message.
  - O(allow_overwrite) lifts the production and data refusals, never the isolation probes.
  - Isolation is probed, not assumed. Each probe is a TCP connection from the target to a production endpoint that
    must fail. Without probes the returned checks say "not probed", never "isolated".
  - Also returns the free space where the staging area will be (its nearest existing ancestor on a fresh host) and
    the state of an earlier restore, for the caller's resume and disk decisions.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Always C(changed=false).
options:
  is_production:
    description: The inventory's word that this host is production.
    type: bool
    default: false
  production_marker:
    description: A file whose presence marks the host as production.
    type: path
    default: /etc/restoreops/production
  app_data_paths:
    description: Paths that must be absent or empty on the target.
    type: list
    elements: path
    default: []
  state_file:
    description: Where the restore records its progress on the target (an interrupted restore is resumed).
    type: path
  staging_dir:
    description: The staging area of the restore (its free space is measured; V(/) is refused).
    type: path
  allow_overwrite:
    description: Restore even onto a production target or over existing data (isolation probes still apply).
    type: bool
    default: false
  isolation_probes:
    description: Production endpoints the target must not reach; each is one TCP connection that must fail.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: What the endpoint is (for messages).
        type: str
      address:
        description: C(HOST:PORT).
        type: str
        required: true
      timeout:
        description: Seconds to wait for the connection.
        type: float
        default: 3
"""

EXAMPLES = r"""
- name: Check the replacement before anything moves
  restoreops.dr.restore_preflight:
    app_data_paths: [/srv/app, /var/lib/postgresql]
    state_file: /var/lib/restoreops/restore-state.json
    staging_dir: /var/lib/restoreops/staging
    isolation_probes:
      - {name: production database, address: "10.0.0.5:5432"}
      - {name: production API, address: "api.internal.example.com:443"}
  register: preflight
"""

RETURN = r"""
checks:
  description: Records for the restore report (C(phase), C(name), C(ok), C(detail), optionally C(required)).
  returned: success
  type: list
  elements: dict
resuming:
  description: An interrupted restore of this host is recorded in O(state_file).
  returned: success
  type: bool
done:
  description: A completed restore is recorded in O(state_file) (and O(allow_overwrite) is false).
  returned: success
  type: bool
previous:
  description: The recorded restore state (empty when there is none).
  returned: success
  type: dict
occupied:
  description: The paths of O(app_data_paths) that hold data.
  returned: success
  type: list
  elements: str
marker:
  description: Whether the production marker file exists.
  returned: success
  type: bool
free_bytes:
  description: Free bytes where the staging area will be; V(null) without O(staging_dir).
  returned: success
  type: int
probes:
  description: Each isolation probe with C(reachable).
  returned: success
  type: list
  elements: dict
isolated:
  description: V(true) when probes ran and none connected; V(null) when there were no probes.
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._preflight import main as preflight_main  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            is_production=dict(type="bool", default=False),
            production_marker=dict(type="path", default="/etc/restoreops/production"),
            app_data_paths=dict(type="list", elements="path", default=[]),
            state_file=dict(type="path"),
            staging_dir=dict(type="path"),
            allow_overwrite=dict(type="bool", default=False),
            isolation_probes=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str"),
                address=dict(type="str", required=True),
                timeout=dict(type="float", default=3),
            )),
        ),
        supports_check_mode=True,
    )
    run_module(module, preflight_main)


if __name__ == "__main__":
    main()
