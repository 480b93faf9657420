"""Checks schemathesis runs on every response besides its own: nothing of another tenant leaks."""

import os

import schemathesis

# A word only the other tenant's records contain (see .ci/schemathesis).
MARKER = os.environ.get("HELPDESK_FUZZ_OTHER_TENANT_MARKER", "")


@schemathesis.check
def no_other_tenant_data(ctx, response, case):
    if MARKER and MARKER in response.text:
        raise AssertionError(f"{case.method} {case.formatted_path} returned another tenant's data")
