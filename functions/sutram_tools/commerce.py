"""Example tools for the customer-support and procurement agents (workflows/).

They answer from small in-memory catalogues so the examples run offline and the same way every
time; a real deployment would call the order system, the inventory service and the supplier
portal here, passing `context.idempotency_key` to anything that changes state.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sutram.tools import ToolContext, tool

ORDERS = {
    "A-1001": {"item": "standing desk", "status": "delayed", "carrier": "DHL", "days_late": 4, "paid": 640},
    "A-1002": {"item": "monitor arm", "status": "delivered", "carrier": "UPS", "days_late": 0, "paid": 89},
}
STOCK = {"laptop": 3, "monitor": 12, "headset": 0}
PRICES = {  # supplier -> unit price in USD cents
    "laptop": {"Northwind": 129_900, "Contoso": 124_500},
    "monitor": {"Northwind": 21_900, "Contoso": 23_400},
    "headset": {"Northwind": 7_900, "Contoso": 6_900},
}


class OrderId(BaseModel):
    order_id: str = Field(description="the order number, e.g. A-1001")


@tool("lookup_order")
def lookup_order(args: OrderId, context: ToolContext) -> dict[str, Any]:
    """Status, carrier and delay of a customer order."""
    order = ORDERS.get(args.order_id)
    return {"order_id": args.order_id, "found": False} if order is None else {"order_id": args.order_id, **order}


class DelayQuestion(BaseModel):
    days_late: int = Field(ge=0)


@tool("refund_policy")
def refund_policy(args: DelayQuestion, context: ToolContext) -> dict[str, Any]:
    """What the policy grants a customer for a late delivery."""
    percent = 0 if args.days_late < 2 else 10 if args.days_late < 7 else 25
    return {"days_late": args.days_late, "refund_percent": percent}


class Item(BaseModel):
    item: str = Field(description="what to buy, e.g. laptop")


@tool("check_inventory")
def check_inventory(args: Item, context: ToolContext) -> dict[str, Any]:
    """How many of an item are in stock."""
    return {"item": args.item, "in_stock": STOCK.get(args.item, 0)}


@tool("get_price_quote")
def get_price_quote(args: Item, context: ToolContext) -> dict[str, Any]:
    """Unit prices from each approved supplier, cheapest first (USD cents)."""
    quotes = sorted(PRICES.get(args.item, {}).items(), key=lambda quote: quote[1])
    return {"item": args.item, "quotes": [{"supplier": s, "unit_price_cents": p} for s, p in quotes]}


class PurchaseOrder(BaseModel):
    item: str
    quantity: int = Field(ge=1, le=1000)
    supplier: str
    unit_price_cents: int = Field(ge=1)


@tool("draft_purchase_order")
def draft_purchase_order(args: PurchaseOrder, context: ToolContext) -> dict[str, Any]:
    """A purchase order draft for finance to approve; nothing is sent to the supplier."""
    return {
        "po_number": f"PO-{context.run_id[-6:].upper()}",
        **args.model_dump(),
        "total_cents": args.quantity * args.unit_price_cents,
        "status": "draft",
    }


class Need(BaseModel):
    item: str
    needed: int = Field(ge=1, le=1000)


@tool("plan_purchase")
def plan_purchase(args: Need, context: ToolContext) -> dict[str, Any]:
    """The purchase order that covers the shortfall from the cheapest approved supplier."""
    in_stock = STOCK.get(args.item, 0)
    supplier, unit_price = min(PRICES[args.item].items(), key=lambda quote: quote[1])
    quantity = max(args.needed - in_stock, 0)
    return {"item": args.item, "quantity": quantity, "supplier": supplier, "unit_price_cents": unit_price}


@tool("place_order", delivery="at_most_once")
def place_order(args: PurchaseOrder, context: ToolContext) -> dict[str, Any]:
    """Send an approved purchase order to the supplier. At most once: never sent twice after a crash."""
    return {
        "po_number": f"PO-{context.run_id[-6:].upper()}",
        "status": "sent",
        "supplier": args.supplier,
        "total_cents": args.quantity * args.unit_price_cents,
        "reference": context.idempotency_key,
    }


class Cancellation(BaseModel):
    po_number: str = Field(min_length=1, description="the purchase order to cancel")
    reason: str = Field(min_length=1, max_length=500)


@tool("cancel_order")
def cancel_order(args: Cancellation, context: ToolContext) -> dict[str, Any]:
    """Cancel a purchase order sent to a supplier: the compensation of `place_order`. Cancelling one
    twice is harmless."""
    return {"po_number": args.po_number, "status": "cancelled", "reason": args.reason}


class Refund(BaseModel):
    order_id: str = Field(description="the order number, e.g. A-1001")
    amount_cents: int = Field(ge=1, description="the refund in USD cents")
    reason: str = Field(min_length=1, max_length=500)


@tool("issue_refund", delivery="at_most_once")
def issue_refund(args: Refund, context: ToolContext) -> dict[str, Any]:
    """Refund part of a paid order to the customer. At most once; the support workflow gates it on a
    human approval."""
    order = ORDERS.get(args.order_id)
    if order is None:
        raise ValueError(f"no order {args.order_id}")
    if args.amount_cents > order["paid"] * 100:
        raise ValueError(f"{args.amount_cents} cents is more than the {order['paid'] * 100} cents paid")
    return {
        "refund_id": f"RF-{context.run_id[-6:].upper()}",
        "order_id": args.order_id,
        "amount_cents": args.amount_cents,
        "status": "refunded",
        "reference": context.idempotency_key,
    }
