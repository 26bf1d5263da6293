"""Synthetic (bank transfer, open invoice) pairs with realistic ways of matching and of nearly matching.

A true pair is a transfer that pays an invoice: the amount may be short by a fee or rounded, it arrives some
days around the due date, and its reference may carry the invoice number (in full, partly, or not at all).
The payer name is the customer's name as a bank writes it (abbreviated, accents dropped, a partner company).
Negatives are hard: the same customer's other invoices, and other customers with similar amounts.
``batch`` selects a later month: later batches pay later and put the invoice number less often.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

FIRST = [
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elisa",
    "Fabio",
    "Gabriela",
    "Hugo",
    "Isabela",
    "Joao",
    "Karina",
    "Lucas",
    "Mariana",
    "Nelson",
    "Olivia",
    "Paulo",
    "Renata",
    "Sergio",
    "Tatiana",
    "Vitor",
]
LAST = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Lima",
    "Pereira",
    "Costa",
    "Ferreira",
    "Almeida",
    "Ribeiro",
    "Carvalho",
    "Gomes",
    "Martins",
    "Rocha",
    "Barbosa",
]
BUSINESS = [
    "Comercio",
    "Transportes",
    "Alimentos",
    "Tecnologia",
    "Construcoes",
    "Servicos",
    "Distribuidora",
    "Farmacia",
    "Papelaria",
    "Mecanica",
]
SUFFIX = ["Ltda", "S.A.", "ME", "Eireli"]
REFERENCES = ["PAGTO NF {n}", "NF {n}", "INV-{n}", "fatura {n}", "pagamento {n}", "{n}", "ref {n} parcela 1", "PIX {n}"]
VAGUE = ["pagamento", "PAGTO FORNECEDOR", "transferencia", "PIX", "servicos prestados", "mensalidade", ""]


def _customer(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(BUSINESS)} {rng.choice(SUFFIX)}"
    return f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"


def _as_payer(name: str, rng: random.Random) -> str:
    words = name.split()
    roll = rng.random()
    if roll < 0.3:
        return name.upper()
    if roll < 0.55 and len(words) > 2:
        return " ".join([words[0], words[1][0] + "."] + words[2:]).upper()
    if roll < 0.7:
        return " ".join(words[:2])
    if roll < 0.8:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"  # a partner pays on the customer's behalf
    return name


def _invoice(rng: random.Random, start: date) -> dict[str, Any]:
    amount = round(rng.choice([rng.uniform(50, 500), rng.uniform(500, 5000), rng.uniform(5000, 50000)]), 2)
    return {
        "number": str(rng.randrange(10000, 999999)),
        "amount": amount,
        "customer": _customer(rng),
        "due": start + timedelta(days=rng.randrange(0, 60)),
    }


def _transfer_for(inv: dict[str, Any], rng: random.Random, batch: int) -> dict[str, Any]:
    amount = inv["amount"]
    roll = rng.random()
    if roll < 0.15:
        amount = round(amount - rng.choice([1.5, 2.9, 3.5, 8.0]), 2)  # bank fee deducted
    elif roll < 0.25:
        amount = float(round(amount))
    elif roll < 0.3:
        amount = round(amount * rng.choice([0.5, 0.98, 1.02]), 2)  # partial or interest
    late = rng.gauss(1 + 2 * batch, 9)
    reference = rng.choice(VAGUE)
    if rng.random() < max(0.25, 0.55 - 0.1 * batch):
        number = inv["number"] if rng.random() < 0.85 else inv["number"][-4:]
        reference = rng.choice(REFERENCES).format(n=number)
    return {
        "amount": amount,
        "date": inv["due"] + timedelta(days=round(late)),
        "reference": reference,
        "payer": _as_payer(inv["customer"], rng),
    }


def _row(transfer: dict[str, Any], inv: dict[str, Any], match: int) -> dict[str, Any]:
    return {
        "transfer_amount": transfer["amount"],
        "invoice_amount": inv["amount"],
        "transfer_date": transfer["date"].isoformat(),
        "invoice_due_date": inv["due"].isoformat(),
        "transfer_reference": transfer["reference"],
        "invoice_number": inv["number"],
        "payer_name": transfer["payer"],
        "customer_name": inv["customer"],
        "is_match": match,
    }


def generate(rows: int, seed: int = 0, batch: int = 0) -> Any:
    """A frame of about ``rows`` labelled pairs (roughly one positive to two hard negatives)."""
    import pandas as pd

    rng = random.Random(seed * 1000 + batch)
    start = date(2026, 1, 1) + timedelta(days=30 * batch)
    records: list[dict[str, Any]] = []
    while len(records) < rows:
        inv = _invoice(rng, start)
        transfer = _transfer_for(inv, rng, batch)
        records.append(_row(transfer, inv, 1))
        sibling = dict(_invoice(rng, start), customer=inv["customer"])  # same customer, another invoice
        if rng.random() < 0.4:  # a recurring invoice: same amount, a month before or after
            sibling.update(amount=inv["amount"], due=inv["due"] + timedelta(days=rng.choice([-30, -31, 30, 31])))
        elif rng.random() < 0.5:
            sibling["amount"] = round(inv["amount"] * rng.uniform(0.9, 1.1), 2)
        records.append(_row(transfer, sibling, 0))
        stranger = _invoice(rng, start)
        stranger["amount"] = round(transfer["amount"] * rng.uniform(0.97, 1.03), 2)
        records.append(_row(transfer, stranger, 0))
    return pd.DataFrame.from_records(records[:rows])
