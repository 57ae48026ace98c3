"""The Dagster UI as the mesh's catalog: domains, products, owners and a failed check, seen in a real browser."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import ElementClickInterceptedException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from platform_lib.contract import parse_duration
from platform_lib.mesh import load_mesh
from tests import dagster_dev

pytestmark = pytest.mark.slow

WAIT_SECONDS = 120
FAILED_CHECK = "column_values_to_be_in_set__segment"
BAD_ROW = "999999,bad@example.com,Bad Row,NL,2024-01-01,vip\n"


@pytest.fixture
def server(tmp_path, sample_sources, monkeypatch):
    """`dagster dev` over the sample mesh, every product published, then a customer row with an
    unknown segment fails a blocking check of customers.customer_profiles.

    The mesh is published before the server starts: otherwise the automation daemon queues
    runs for the products it finds missing, which then run after the CLI's and leave the
    UI showing the checks of their materialization as not evaluated.
    """
    running = dagster_dev.start(tmp_path, sample_sources, published=True)
    monkeypatch.setenv("MESH_DATA_DIR", str(running.data_dir))
    try:
        with open(running.data_dir / "sources" / "customers" / "customers.csv", "a", encoding="utf-8") as handle:
            handle.write(BAD_ROW)
        spoiled = running.mesh("materialize", "customers")
        assert spoiled.returncode == 1 and FAILED_CHECK in spoiled.stdout, spoiled.stdout + spoiled.stderr
        yield running
    finally:
        running.stop()


def page_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for_text(driver, *texts: str) -> str:
    try:
        WebDriverWait(driver, WAIT_SECONDS).until(lambda d: all(t in page_text(d) for t in texts))
    except TimeoutException:
        shown = page_text(driver)
        missing = [t for t in texts if t not in shown]
        raise AssertionError(f"{driver.current_url} does not show {missing} after {WAIT_SECONDS} s; it shows:\n{shown[:3000]}") from None
    return page_text(driver)


def dismiss_dialogs(driver) -> None:
    """The first visit of an instance shows a community sign-up dialog."""
    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        button.click()


def click(driver, element) -> None:
    """Click `element`, closing the sign-up dialog first if it opened over the page in the meantime."""
    WebDriverWait(driver, 10, ignored_exceptions=()).until(lambda d: _clicked(d, element))


def _clicked(driver, element) -> bool:
    try:
        element.click()
    except ElementClickInterceptedException:
        dismiss_dialogs(driver)
        return False
    return True


def test_the_ui_shows_domains_products_owners_and_the_failed_check(server, browser, artifacts):
    domains = {d.domain.name: d for d in load_mesh()}
    product_names = [p.name for d in domains.values() for p in d.products]

    browser.get(f"{server.url}/asset-groups")
    wait_for_text(browser, *domains)
    dismiss_dialogs(browser)
    for name in domains:  # each domain is a collapsed group in the graph: open it
        graph_nodes = [e for e in browser.find_elements(By.XPATH, f"//*[normalize-space(text())='{name}']") if e.location["x"] > 400]
        click(browser, graph_nodes[-1])
    wait_for_text(browser, *product_names)
    browser.save_screenshot(str(artifacts / "asset-graph.png"))

    for name, loaded in domains.items():
        product = next(p for p in loaded.products if p.access == "public")
        browser.get(f"{server.url}/assets/{name}/{product.name}")
        hours = int(parse_duration(product.freshness.fail_after).total_seconds() // 3600)
        wait_for_text(  # the page fills its sections one by one: wait for each
            browser,
            product.description,
            f"Owners\n{product.owner}",
            f"Group\n{name}",
            *(f"\n{column.name}\n" for column in product.columns),  # the contract's column schema
            f"Fails if more than {hours} hours since last materialization",  # its freshness SLO
        )
        browser.save_screenshot(str(artifacts / f"product-{name}-{product.name}.png"))

    browser.get(f"{server.url}/assets/customers/customer_profiles?view=checks")
    wait_for_text(browser, "Failed")
    dismiss_dialogs(browser)
    click(browser, browser.find_element(By.XPATH, "//*[normalize-space(text())='Failed']"))
    wait_for_text(browser, FAILED_CHECK, "FAILED, 1 of ", "This is a blocking asset check.", "'vip'")
    browser.save_screenshot(str(artifacts / "product-customers-customer_profiles-failed-check.png"))
