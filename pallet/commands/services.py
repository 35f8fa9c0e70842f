"""`pallet services`: the compute services of the services file, and whether they answer."""
from __future__ import annotations

import json
import sys

import click


@click.command()
@click.option("--services", "path", metavar="FILE", type=click.Path(dir_okay=False),
              help="The services file (default ~/.config/pallet/services.toml, or PALLET_SERVICES).")
@click.option("--check", is_flag=True, help="Ask each service for its locations (uses the credentials).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def services(path, check, as_json):
    """List the compute services a spec's :compute or --compute can name. Credentials are
    shown as where they come from (env:NAME, file:PATH), never as values.
    Exit status: 0, 1 when --check found a service that does not answer, 2 bad input."""
    from pallet.errors import PalletError
    from pallet.runtime.cloud.services import default_path, load_services

    file = path or str(default_path())
    found = load_services(path)
    rows = []
    failed = 0
    for name, svc in found.items():
        row = {"name": name, "provider": svc.provider, "region": svc.region,
               "endpoint": svc.endpoint, "identity": svc.describe_secret("identity"),
               "credential": svc.describe_secret("credential")}
        if check:
            from pallet.runtime.cloud.provider import CloudProvider
            provider = CloudProvider(svc)
            try:
                locations = provider.call("listing locations", provider.driver.list_locations)
                if svc.provider == "openstack":
                    # libcloud's OpenStack locations ask nothing of the API: log in and list sizes
                    from pallet.runtime.cloud.drivers import list_sizes
                    provider.call("listing sizes", list_sizes, provider.driver)
                row["check"] = "ok"
                row["locations"] = [str(getattr(x, "name", None) or x.id) for x in locations]
            except PalletError as exc:
                failed += 1
                row["check"] = "failed"
                row["error"] = svc.redact(exc.message)
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no services in {file}")
    else:
        head = ["NAME", "PROVIDER", "REGION", "ENDPOINT", "IDENTITY", "CREDENTIAL"] + (["CHECK"] if check else [])
        table = [[r["name"], r["provider"], r["region"] or "-", r["endpoint"] or "-", r["identity"],
                  r["credential"]] + ([_check_cell(r)] if check else []) for r in rows]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *table)]
        for line in (head, *table):
            click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
    if failed:
        sys.exit(1)


def _check_cell(row: dict) -> str:
    if row["check"] == "ok":
        n = len(row["locations"])
        return f"ok ({n} location{'' if n == 1 else 's'})"
    return f"failed: {row['error']}"
