"""Each global policy broken on purpose by edits to the sample domains, with the line `mesh validate` prints for it."""

CUSTOMERS_RAW = "customers/products/raw_customers.yaml"
PROFILES = "customers/products/customer_profiles.yaml"
PROFILES_SQL = "customers/products/customer_profiles.sql"
CLV = "marketing/products/customer_lifetime_value.yaml"
SEGMENTS = "marketing/products/segment_revenue.yaml"

CASES = {
    "owner": (
        [(CUSTOMERS_RAW, "access: internal", 'access: internal\nowner: ""')],
        "owner customers.raw_customers domains/customers/products/raw_customers.yaml: has no owner team; "
        "set `owner: team-<name>` in the contract or in domain.yaml",
    ),
    "description": (
        [(CUSTOMERS_RAW, "description: Customer master data as exported by the CRM, one row per customer.", 'description: " "')],
        "description customers.raw_customers domains/customers/products/raw_customers.yaml: has an empty description; "
        "write one sentence on what a row is in `description`",
    ),
    "public-contract-key": (
        [(PROFILES, "primary_key: [customer_id]\n", "")],
        "public-contract customers.customer_profiles domains/customers/products/customer_profiles.yaml: "
        "is public but declares no primary_key; add `primary_key: [<key columns>]`",
    ),
    "public-contract-freshness": (
        [(PROFILES, "freshness: {fail_after: 26h, warn_after: 24h}\n", "")],
        "public-contract customers.customer_profiles domains/customers/products/customer_profiles.yaml: "
        "is public but declares no freshness SLO; add `freshness: {fail_after: 24h}` (or its real SLO)",
    ),
    "public-blocking-check": (
        [(CLV, "min_value: 0}", "min_value: 0, severity: warn}"), (CLV, "or_equal: true}", "or_equal: true, severity: warn}")],
        "public-blocking-check marketing.customer_lifetime_value domains/marketing/products/customer_lifetime_value.yaml: "
        "is public but has no blocking quality rule; add a rule under `quality:` with the default `severity: error`",
    ),
    "retention": (
        [(SEGMENTS, "retention: {snapshots: 10}\n", "")],
        "retention marketing.segment_revenue domains/marketing/products/segment_revenue.yaml: "
        "does not declare its retention; add `retention: {snapshots: <how many to keep>}`",
    ),
    "cross-domain-access": (
        [(CLV, "inputs: [orders.order_lines,", "inputs: [orders.raw_orders, orders.order_lines,")],
        "cross-domain-access marketing.customer_lifetime_value domains/marketing/products/customer_lifetime_value.yaml: "
        "reads orders.raw_orders, an internal product of domain orders; "
        "remove it from `inputs`, or ask team-orders to make it `access: public`",
    ),
    "pii-masked": (
        [(PROFILES, "pii: true, mask: hash,", "pii: true,")],
        "pii-masked customers.customer_profiles domains/customers/products/customer_profiles.yaml: "
        "is public and its PII column email declares no mask; add `mask: hash` (joinable) or `mask: redact` (NULL) to column email",
    ),
    "pii-masked-key": (
        [(CLV, "{name: customer_id, type: BIGINT, required: true, pii: false}", "{name: customer_id, type: BIGINT, required: true, pii: true, mask: redact}")],
        "pii-masked marketing.customer_lifetime_value domains/marketing/products/customer_lifetime_value.yaml: "
        "is public and redacts customer_id, a column of its primary key: consumers would read NULL keys; "
        "use `mask: hash` on column customer_id: hashed keys stay unique and joinable",
    ),
    "pii-inherited": (
        [(PROFILES, "pii: true, mask: hash,", "")],
        "pii-inherited customers.customer_profiles domains/customers/products/customer_profiles.yaml: "
        "column email comes from PII column customers.raw_customers.email but is not marked PII; "
        "mark column email `pii: true` (with a `mask:`)",
    ),
    "pii-inherited-renamed": (
        [(PROFILES, "{name: email, type: VARCHAR, pii: true, mask: hash,", "{name: contact, type: VARCHAR,"),
         (PROFILES, "column: email, regex", "column: contact, regex"),
         (PROFILES_SQL, "lower(trim(email)) AS email", "lower(trim(email)) AS contact")],
        "pii-inherited customers.customer_profiles domains/customers/products/customer_profiles.yaml: "
        "column contact comes from PII column customers.raw_customers.email but is not marked PII; "
        "mark column contact `pii: true` (with a `mask:`)",
    ),
    "pii-inherited-pandas": (
        [(CLV, "{name: segment, type: VARCHAR, required: true, pii: false}", "{name: segment, type: VARCHAR, required: true}")],
        "pii-inherited marketing.customer_lifetime_value domains/marketing/products/customer_lifetime_value.yaml: "
        "reads PII (customers.customer_profiles.email) in a pandas transform, whose columns are not followed to their inputs; "
        "say of each column whether it holds PII: `pii: true` (with a `mask:`) or `pii: false` (segment)",
    ),
    "valid-contract-unknown-input": (
        [(CLV, "customers.customer_profiles]", "customers.customer_profile]")],
        "valid-contract marketing.customer_lifetime_value domains/marketing/products/customer_lifetime_value.yaml: "
        "unknown product customers.customer_profile: no domain of the mesh publishes it; fix field 'inputs'",
    ),
    "valid-contract": (
        [(SEGMENTS, "{name: customers, type: BIGINT,", "{name: customers, type: BIGNUMBER,")],
        "valid-contract marketing.segment_revenue domains/marketing/products/segment_revenue.yaml: "
        "'BIGNUMBER' is not a DuckDB type: Catalog Error: Type with name BIGNUMBER does not exist!; fix field 'columns[customers].type'",
    ),
}
