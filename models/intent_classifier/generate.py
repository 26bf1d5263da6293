"""Synthetic customer-service utterances for about 80 banking intents.

Intents are (action, product) pairs such as ``block_credit_card`` or ``dispute_pix``.  Utterances are composed
from several phrasings per action, several names per product, greetings, fillers, context sentences, typos,
dropped words and a little label noise, so that the task has realistic overlap between intents.  ``batch``
selects a month: months 0 and 1 are alike; from month 2 on the traffic drifts (a different mix of intents,
newer slang), more each month.
"""

from __future__ import annotations

import random
from typing import Any

PRODUCTS: dict[str, list[str]] = {
    "credit_card": ["credit card", "card", "mastercard", "visa card", "platinum card", "cc"],
    "debit_card": ["debit card", "atm card", "bank card", "debit"],
    "account": ["account", "checking account", "current account", "bank account"],
    "savings": ["savings", "savings account", "poupanca", "savings pot"],
    "loan": ["loan", "personal loan", "credit line", "consigned loan"],
    "mortgage": ["mortgage", "home loan", "housing loan", "property financing"],
    "pix": ["pix", "pix transfer", "instant transfer", "pix payment"],
    "wire": ["wire transfer", "bank transfer", "ted", "doc transfer"],
    "boleto": ["boleto", "bill slip", "payment slip", "bank slip"],
    "investment": ["investment", "cdb", "fund", "treasury bond"],
    "insurance": ["insurance", "insurance policy", "life insurance", "card insurance"],
    "app": ["app", "mobile app", "internet banking", "online banking"],
}

ACTIONS: dict[str, tuple[list[str], list[str]]] = {
    "block": (
        [
            "block my {p}",
            "freeze my {p}",
            "lock the {p} right now",
            "my {p} was stolen please block it",
            "i lost my {p}, can you block it",
            "stop all use of my {p}",
        ],
        ["credit_card", "debit_card", "account", "pix", "app"],
    ),
    "unblock": (
        [
            "unblock my {p}",
            "unfreeze the {p}",
            "my {p} is blocked, release it",
            "reactivate my {p}",
            "why is my {p} locked, i need it working",
        ],
        ["credit_card", "debit_card", "account", "pix", "app"],
    ),
    "cancel": (
        [
            "cancel my {p}",
            "i want to close my {p}",
            "terminate the {p}",
            "i dont want the {p} anymore",
            "end my {p} contract",
        ],
        ["credit_card", "debit_card", "account", "savings", "insurance", "loan"],
    ),
    "request": (
        [
            "i want a new {p}",
            "how do i apply for a {p}",
            "request a {p}",
            "can i get a {p}",
            "sign me up for a {p}",
            "open a {p} for me",
        ],
        ["credit_card", "debit_card", "account", "savings", "loan", "mortgage", "insurance", "investment"],
    ),
    "status": (
        [
            "what is the status of my {p}",
            "where is my {p}",
            "track my {p}",
            "has my {p} gone through",
            "my {p} still hasnt arrived",
            "any update on the {p}",
        ],
        ["credit_card", "debit_card", "loan", "mortgage", "pix", "wire", "boleto"],
    ),
    "fees": (
        [
            "why was i charged a fee on my {p}",
            "how much does the {p} cost",
            "what are the {p} fees",
            "there is a tariff on my {p}",
            "remove the annual fee from my {p}",
        ],
        ["credit_card", "debit_card", "account", "wire", "investment", "insurance"],
    ),
    "limit": (
        [
            "increase my {p} limit",
            "raise the limit of my {p}",
            "my {p} limit is too low",
            "can i get more limit on the {p}",
            "what is my {p} limit",
        ],
        ["credit_card", "pix", "loan"],
    ),
    "dispute": (
        [
            "i dont recognize a charge on my {p}",
            "dispute a transaction on my {p}",
            "there is a purchase i didnt make on the {p}",
            "fraud on my {p}",
            "contest a {p} charge",
        ],
        ["credit_card", "debit_card", "pix", "boleto"],
    ),
    "balance": (
        [
            "whats my {p} balance",
            "how much do i have in my {p}",
            "show the balance of my {p}",
            "check {p} balance",
            "how much money is in the {p}",
        ],
        ["account", "savings", "investment"],
    ),
    "schedule": (
        [
            "schedule a {p}",
            "program a {p} for next friday",
            "can i set a {p} for tomorrow",
            "make a recurring {p}",
            "book a {p} for the 5th",
        ],
        ["pix", "wire", "boleto"],
    ),
    "reverse": (
        [
            "reverse a {p}",
            "i sent a {p} to the wrong person",
            "undo the {p} i made",
            "get my money back from a {p}",
            "refund the {p}",
        ],
        ["pix", "wire", "boleto"],
    ),
    "pay": (
        [
            "pay my {p}",
            "pay the {p} bill",
            "i want to settle the {p}",
            "how do i pay the {p}",
            "make a payment on my {p}",
        ],
        ["credit_card", "loan", "mortgage", "boleto"],
    ),
    "due_date": (
        [
            "change the due date of my {p}",
            "move my {p} due date",
            "when is my {p} due",
            "my {p} due date is bad for me",
        ],
        ["credit_card", "loan", "mortgage"],
    ),
    "renegotiate": (
        [
            "renegotiate my {p}",
            "i cant pay my {p} installments",
            "i need a deal on my {p} debt",
            "lower the interest on my {p}",
            "restructure my {p}",
        ],
        ["credit_card", "loan", "mortgage"],
    ),
    "simulate": (
        [
            "simulate a {p}",
            "how much interest for a {p}",
            "what would a {p} cost me",
            "calculate the installments of a {p}",
            "quote me a {p}",
        ],
        ["loan", "mortgage", "investment", "insurance"],
    ),
    "redeem": (
        ["redeem my {p}", "withdraw from my {p}", "take money out of the {p}", "cash out my {p}", "liquidate the {p}"],
        ["savings", "investment"],
    ),
    "password": (
        [
            "reset my {p} password",
            "i forgot the {p} password",
            "change the pin of my {p}",
            "my {p} password is not working",
            "new password for the {p}",
        ],
        ["credit_card", "debit_card", "app"],
    ),
    "statement": (
        [
            "send me the {p} statement",
            "i need the {p} statement for last month",
            "download the {p} extract",
            "show recent {p} transactions",
            "where do i see my {p} history",
        ],
        ["credit_card", "account", "savings", "investment", "loan"],
    ),
}

GREETINGS = ["", "", "", "hi ", "hello ", "good morning, ", "hey there ", "excuse me, ", "oi, ", "good evening "]
OPENERS = ["", "", "", "please ", "i need to ", "i would like to ", "can you ", "help me ", "how can i ", "i want to "]
CLOSERS = ["", "", "", " please", " thanks", " asap", " urgently", " thank you", " today", " right away", "?", "!!"]
CONTEXT = [
    "",
    "",
    "",
    "",
    "i am travelling. ",
    "its urgent. ",
    "i called yesterday. ",
    "my wife told me to. ",
    "the app is confusing. ",
    "im a customer for 10 years. ",
]
SLANG = ["pls", "plz", "u", "thx", "asap", "rn"]


def intents() -> list[str]:
    """Every intent label, sorted."""
    return sorted(f"{action}_{product}" for action, (_, products) in ACTIONS.items() for product in products)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(len(word) - 1)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind < 0.7:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def utterance(action: str, product: str, rng: random.Random, batch: int = 0) -> str:
    """One utterance for an intent."""
    phrasings, _ = ACTIONS[action]
    text = rng.choice(phrasings).format(p=rng.choice(PRODUCTS[product]))
    if not text.startswith(("i ", "my ", "what", "where", "how", "why", "when", "has", "any", "can", "there")):
        text = rng.choice(OPENERS) + text
    text = rng.choice(CONTEXT) + rng.choice(GREETINGS) + text + rng.choice(CLOSERS)
    words = text.split()
    words = [_typo(w, rng) if rng.random() < 0.06 else w for w in words]
    if len(words) > 5 and rng.random() < 0.15:
        del words[rng.randrange(len(words))]
    if batch >= 2 and rng.random() < 0.25 * min(batch - 1, 3):
        words.insert(rng.randrange(len(words) + 1), rng.choice(SLANG))
    text = " ".join(words)
    if rng.random() < 0.2:
        text = text.capitalize()
    if rng.random() < 0.05:
        text = text.upper()
    return text


def generate(rows: int, seed: int = 0, batch: int = 0) -> Any:
    """A frame of ``rows`` utterances with columns ``text`` and ``intent``.

    Args:
        rows: How many utterances.
        seed: Random seed (same seed and batch give the same rows).
        batch: Month index; from month 2 on, batches favour different intents and add slang.
    """
    import pandas as pd

    rng = random.Random(seed * 1000 + batch)
    labels = intents()
    drift = max(0, batch - 1)
    weights = [1.0 + (3.0 * drift if i % 5 == 0 else 0.0) for i in range(len(labels))]
    chosen = rng.choices(labels, weights=weights, k=rows)
    records = []
    for label in chosen:
        action, product = _split(label)
        text = utterance(action, product, rng, batch)
        if rng.random() < 0.01:  # label noise, as in real logs
            label = rng.choice(labels)
        records.append({"text": text, "intent": label})
    return pd.DataFrame.from_records(records, columns=["text", "intent"])


def _split(label: str) -> tuple[str, str]:
    for product in sorted(PRODUCTS, key=len, reverse=True):
        if label.endswith("_" + product):
            return label[: -len(product) - 1], product
    raise ValueError(f"intent {label!r} has no known product")
