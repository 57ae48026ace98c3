"""`mesh`: the command line of the platform.

    mesh sample-data [--scale S]      write the sample mesh's source files
    mesh materialize [DOMAIN ...]     build, check and publish products in dependency order
                                      (on the executor MESH_EXECUTOR names, see executor.py)
    mesh prepare-dbt                  parse the domains' dbt projects into their manifests
"""

from __future__ import annotations

import argparse
import os
import sys

from platform_lib import sample_data
from platform_lib.mesh import load_mesh


def cmd_sample_data(args: argparse.Namespace) -> int:
    root = sample_data.generate(args.scale)
    print(f"sample source data at scale {args.scale} written to {root}")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from platform_lib.executor import executor_name
    from platform_lib.materialize import materialize_distributed, materialize_products, print_summary

    mesh = load_mesh()
    known = {d.path.name for d in mesh}
    unknown = sorted(set(args.domains) - known)
    if unknown:
        print(f"unknown domain(s): {', '.join(unknown)}; the mesh has {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    selected = [d for d in mesh if not args.domains or d.path.name in args.domains]
    broken = [d for d in selected if d.error]
    for domain in broken:
        print(f"cannot load domain {domain.path.name}: {domain.error}", file=sys.stderr)
    if broken:
        return 2
    products = [p for d in selected for p in d.products]
    if executor_name() == "in_process":
        outcomes = materialize_products(products)
    elif not os.environ.get("DAGSTER_HOME"):
        print(f"MESH_EXECUTOR={executor_name()} needs DAGSTER_HOME: an instance its workers share", file=sys.stderr)
        return 2
    else:
        with DagsterInstance.get() as instance:
            outcomes = materialize_distributed(products, instance)
    print_summary(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_prepare_dbt(args: argparse.Namespace) -> int:
    from platform_lib.dbt_project import prepare_all

    return 0 if prepare_all() else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesh", description="The data mesh platform's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample-data", help="write the sample mesh's source files")
    sample.add_argument("--scale", type=float, default=float(os.environ.get("MESH_SCALE", "1")))
    sample.set_defaults(run=cmd_sample_data)
    materialize = commands.add_parser("materialize", help="build, check and publish products in dependency order")
    materialize.add_argument("domains", nargs="*", help="domains to materialize (default: all)")
    materialize.set_defaults(run=cmd_materialize)
    prepare_dbt = commands.add_parser("prepare-dbt", help="parse the domains' dbt projects into their manifests (make does this)")
    prepare_dbt.set_defaults(run=cmd_prepare_dbt)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
