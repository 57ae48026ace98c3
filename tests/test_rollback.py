"""`mesh rollback`: a version that passed its checks but is wrong gives way to an earlier one's data at once."""

from __future__ import annotations

import dagster as dg
import duckdb

from platform_lib import output_port, storage
from platform_lib.cli import main
from tests.helpers import run
from tests.reliability.damage import edit_contract, rewrite_csv

PRODUCT = "customers.raw_customers"
READER = "customers.customer_profiles"


def domain_view_rows(name: str) -> int:
    with duckdb.connect(str(storage.warehouse_path("customers")), read_only=True) as connection:
        return connection.execute(f"SELECT count(*) FROM main.{name}").fetchone()[0]


def test_rollback_serves_the_earlier_data_as_a_new_version_and_names_its_stale_readers(mesh_dir, domains_copy, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["rollback", PRODUCT]) == 2
    assert f"mesh rollback: {PRODUCT} has never been published" in capsys.readouterr().err
    assert not storage.warehouse_path("customers").exists()  # refused before the domain's file is opened
    assert all(o.ok for o in run("customers").values())
    good = output_port.current(PRODUCT)
    rewrite_csv(mesh_dir / "sources", "SELECT * FROM t WHERE customer_id::INT % 2 = 0")  # half the customers lost, within the checks
    assert all(o.ok for o in run("customers").values())
    wrong, reader = output_port.current(PRODUCT), output_port.current(READER)
    assert wrong.rows < good.rows and reader.inputs[PRODUCT] == wrong.version

    assert main(["rollback", PRODUCT]) == 0
    out = capsys.readouterr().out.splitlines()
    served = output_port.current(PRODUCT)
    assert out[0] == (f"{PRODUCT}: serves {served.version}, the data of {good.version} ({good.rows:,} rows, published "
                      f"{good.published_at}); no longer served: {wrong.version}")
    assert out[1] == f"built from a version no longer served: {READER} {reader.version}; rebuild them: mesh materialize {READER}"
    assert served.version > wrong.version and served.version.endswith("-rollback")
    assert (served.restored_from, served.published_at, served.rows) == (good.version, good.published_at, good.rows)
    assert output_port.digest(served.path) == output_port.digest(good.path)
    assert domain_view_rows("raw_customers") == good.rows  # the domain's view follows the pointer
    with dg.DagsterInstance.get() as instance:  # the UI shows what consumers read now
        [observed] = [r.asset_observation for r in instance.fetch_observations(dg.AssetKey(["customers", "raw_customers"]), limit=5).records]
        assert (observed.metadata["served_version"].value, observed.metadata["restored_from"].value) == (served.version, good.version)
    assert main(["lineage", PRODUCT]) == 0
    assert f"published {good.published_at}, the data of {good.version} (rolled back))" in capsys.readouterr().out
    assert main(["status", PRODUCT]) == 0
    assert f"rolled back: {served.version} serves the data of {good.version}" in capsys.readouterr().out

    # The served data is the oldest retained: nothing older to go back to by default; an explicit version goes forward.
    assert main(["rollback", PRODUCT]) == 2
    assert f"no version older than the served one ({good.version}) is retained" in capsys.readouterr().err
    assert main(["rollback", PRODUCT, "--to", good.version]) == 2
    assert f"{good.version}'s data is the one served already ({served.version})" in capsys.readouterr().err
    assert main(["rollback", PRODUCT, "--to", "v2000"]) == 2
    assert f"no version v2000 is retained; retained: {good.version}, {wrong.version}, {served.version}" in capsys.readouterr().err
    assert main(["rollback", PRODUCT, "--to", wrong.version]) == 0
    forward = output_port.current(PRODUCT)
    assert output_port.digest(forward.path) == output_port.digest(wrong.path)
    # What consumers read until now is named with its data; the reader, built from this data, is not stale.
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"{PRODUCT}: serves {forward.version}, the data of {wrong.version} ({wrong.rows:,} rows, published {wrong.published_at}); "
        f"no longer served: {served.version}, the data of {good.version}",
        f"the next run of {PRODUCT} (its schedule's too) builds it from its sources again, and publishes what they hold if it passes the checks",
    ]
    assert main(["rollback", PRODUCT, "--to", served.version]) == 0
    again = output_port.current(PRODUCT)
    assert again.restored_from == good.version
    assert capsys.readouterr().out.splitlines()[1] == out[1]  # the reader, built from the wrong data, is stale again
    assert main(["rollback", PRODUCT, "--to", served.version]) == 2  # another version than the served one, the same data
    assert f"{served.version}'s data is the one served already ({again.version})" in capsys.readouterr().err

    # A run building the product holds it back; so does a contract that moved on.
    output_port.mark_building(PRODUCT, "run-in-progress")
    assert main(["rollback", PRODUCT, "--to", wrong.version]) == 2
    assert f"{PRODUCT}: run run-in-progress is building it" in capsys.readouterr().err
    (output_port.port_dir(PRODUCT) / output_port.BUILDING).unlink()
    edit_contract(domains_copy, PRODUCT, lambda contract: contract.update(version="2.0.0"))
    assert main(["rollback", PRODUCT, "--to", wrong.version]) == 2
    assert f"{wrong.version} was published under contract version {wrong.contract_version}, the contract is at 2.0.0 now" in capsys.readouterr().err


def test_the_next_run_after_a_rollback_publishes_after_it(mesh_dir, capsys):
    assert all(o.ok for o in run("customers").values())
    good = output_port.current(PRODUCT)
    rewrite_csv(mesh_dir / "sources", "SELECT * FROM t WHERE customer_id::INT % 2 = 0")
    assert all(o.ok for o in run("customers").values())
    assert main(["rollback", PRODUCT]) == 0
    restored = output_port.current(PRODUCT)
    assert all(o.ok for o in run("customers").values())
    rebuilt = output_port.current(PRODUCT)
    assert rebuilt.version > restored.version and rebuilt.restored_from is None and rebuilt.rows < good.rows
    assert restored.version in output_port.versions(PRODUCT)  # retained as any served version is
    assert output_port.current(READER).inputs[PRODUCT] == rebuilt.version
