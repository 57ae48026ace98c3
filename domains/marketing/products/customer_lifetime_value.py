"""Customer lifetime value: what each customer has spent on orders that were not returned."""

import pandas as pd


def transform(inputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    lines = inputs["orders.order_lines"]
    profiles = inputs["customers.customer_profiles"][["customer_id", "segment"]]
    kept = lines[lines["status"].isin(["shipped", "delivered"])]
    per_customer = kept.groupby("customer_id").agg(
        orders=("order_id", "nunique"),
        revenue=("amount", "sum"),
        first_order_date=("order_date", "min"),
        last_order_date=("order_date", "max"),
    )
    return profiles.merge(per_customer.reset_index(), on="customer_id", how="inner")
