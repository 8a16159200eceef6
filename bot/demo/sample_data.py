"""Sample data the project writes itself, for the demo and the tests.

Two sets, generated from templates and slots with a fixed seed so every run sees the same
texts: customer-service messages over ten banking intents (label names from BANKING77, texts
our own) and posts about a fictional company ("Northwind Mobile") labelled by sentiment.
Nothing here is copied from a public data set.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SUPPORT_TEMPLATES: dict[str, list[str]] = {
    "card_arrival": [
        "{greet}ordered a card {days} ago and the post still hasn't brought it",
        "any news on the card delivery? my {place} has nothing after {days}",
        "the app says my card was sent {days} ago but i don't have it",
        "my new card has not arrived yet, it has been {days}",
        "where is my card? ordered it {days} ago",
        "still waiting for the card you sent {days} ago",
        "how long does the card take to come? it's been {days}",
        "the card never showed up at my {place}",
        "is my card in the post? nothing after {days}",
    ],
    "lost_or_stolen_card": [
        "{greet}my card is gone, i think i left it at the {venue} {when}",
        "someone has my card, it went missing at the {venue}",
        "my bag was taken {when} and the card was in it",
        "i lost my card {when}, please block it",
        "my card was stolen {when} at the {venue}",
        "someone took my wallet with the card {when}",
        "can't find my card anywhere since {when}",
        "i think my card was stolen, what do i do",
        "card lost {when}, need to freeze it now",
    ],
    "pin_blocked": [
        "the card got locked because of the pin at the {venue}",
        "{greet}typed my pin wrong {times}, now the card says blocked",
        "can't use my card {when}, it says pin tries exceeded",
        "my pin is blocked after i typed it wrong {times}",
        "entered the wrong pin {times} and now it's blocked",
        "how do i unblock my pin",
        "pin blocked at the {venue}, help",
        "the atm says my pin is locked",
        "locked out of my pin {when}",
    ],
    "exchange_rate": [
        "{greet}how much is one pound in {currency} with you",
        "why is your {currency} rate different from google",
        "what will {amount} be worth in {currency} today",
        "what exchange rate do you use for {currency}",
        "how is the rate for {currency} calculated",
        "is the {currency} exchange rate fixed or live",
        "what rate will i get converting to {currency}",
        "where can i see today's {currency} rate",
        "do you use the market rate for {currency}",
    ],
    "top_up_failed": [
        "{greet}tried to put money on the card with {method} and it didn't work",
        "adding {amount} to my balance keeps failing {when}",
        "money from my {method} did not go into the account",
        "my top up failed {when}",
        "tried to add {amount} to my account but the top up didn't work",
        "top up was declined, why",
        "can't top up with my {method}, it keeps failing",
        "the top up of {amount} failed again",
        "why did my top up not go through {when}",
    ],
    "transaction_charged_twice": [
        "{greet}the {venue} took my money two times",
        "i paid once at the {venue} but see two payments of {amount}",
        "duplicate payment of {amount} {when}, i only bought one thing",
        "i was charged twice for the same payment at the {venue}",
        "the {amount} payment shows up two times",
        "double charge on my statement {when}",
        "you took {amount} twice for one purchase",
        "same transaction appears twice, please fix",
        "why was i billed twice at the {venue}",
    ],
    "request_refund": [
        "{greet}the {venue} owes me {amount}, how do i get it back",
        "returned the item {when}, when do i get my {amount} back",
        "can you send back the money for a cancelled order at the {venue}",
        "i want a refund for the {amount} payment",
        "how do i get my money back from the {venue}",
        "please refund the order i returned {when}",
        "can i request a refund for {amount}",
        "the {venue} agreed to refund me, how does it work",
        "i need to get a refund for a purchase",
    ],
    "change_pin": [
        "{greet}i'd like a different pin, the current one is too easy",
        "can i choose my own pin {when}",
        "want to swap my pin for a new number at the {venue} machine",
        "how can i change my pin",
        "i want to set a new pin for my card",
        "where in the app do i change the pin",
        "can i change my pin at the {venue} atm",
        "need to update my pin, i forgot which one i chose",
        "is it possible to pick a new pin {when}",
    ],
    "terminate_account": [
        "{greet}i'm done with this bank, shut down my account",
        "please end my membership and pay out the {amount} left",
        "how do i leave and get rid of my account {when}",
        "i want to close my account",
        "please delete my account, i'm leaving",
        "how do i cancel my account {when}",
        "close my account and send the {amount} balance to my bank",
        "i no longer need this account, terminate it",
        "what happens to my money if i close the account",
    ],
    "cash_withdrawal_charge": [
        "{greet}took out {amount} at the {venue} and paid a fee",
        "why does taking {amount} from the cash machine cost money",
        "extra charge after i got cash {when}, is that normal",
        "why was i charged a fee for taking cash out",
        "there is a fee on my atm withdrawal of {amount}",
        "how much does it cost to withdraw {amount} in cash",
        "got charged for a cash withdrawal at the {venue}",
        "is there a charge for using the atm {when}",
        "the atm fee on my {amount} withdrawal is too high",
    ],
}

SENTIMENT_TEMPLATES: dict[str, list[str]] = {
    "negative": [
        "{greet}three days without {feature}, thanks a lot northwind",
        "not impressed by the new northwind {feature} at all",
        "why do i still pay northwind when the {feature} {broke}",
        "northwind mobile {feature} is {bad} {when}",
        "really {angry} with northwind, the {feature} {broke}",
        "{when} the northwind {feature} {broke} again. {bad}",
        "worst {feature} ever from northwind mobile, {angry}",
        "northwind support was {bad}, i waited {days} for an answer",
        "cancelling northwind, the {feature} is {bad}",
    ],
    "neutral": [
        "{greet}northwind {feature} costs the same as last year",
        "my northwind contract ends in {month}",
        "northwind mobile {feature} review comes out {when}",
        "northwind mobile updated the {feature} {when}",
        "does anyone know if the northwind {feature} works abroad",
        "northwind announced a new {feature} for {month}",
        "switched my plan to northwind {when}, we will see",
        "northwind mobile {feature} notes are posted on their site",
        "is the northwind {feature} change coming in {month}",
    ],
    "positive": [
        "{greet}didn't expect the northwind {feature} to be this {good}",
        "no complaints about northwind {feature} since {month}",
        "switched to northwind and the {feature} {works}, {happy}",
        "northwind mobile {feature} is {good} {when}",
        "really {happy} with northwind, the {feature} {works}",
        "{when} the northwind {feature} {works}. {good}",
        "best {feature} ever from northwind mobile, {happy}",
        "northwind support was {good}, fixed it in minutes",
        "thanks northwind, the {feature} is {good}",
    ],
}

SLOTS: dict[str, list[str]] = {
    "days": ["two weeks", "ten days", "a week", "a month", "three weeks", "5 days"],
    "place": ["home", "office", "new address", "flat"],
    "when": ["today", "yesterday", "this morning", "last night", "on friday", "an hour ago"],
    "venue": ["shop", "supermarket", "station", "airport", "restaurant", "hotel"],
    "times": ["three times", "twice", "too many times", "4 times"],
    "currency": ["euro", "dollars", "pounds", "yen", "swiss francs"],
    "amount": ["20 pounds", "50 euro", "100 dollars", "15 pounds", "200 euro"],
    "method": ["debit card", "credit card", "apple pay", "bank transfer"],
    "feature": ["app", "network", "coverage", "billing", "roaming", "customer service", "5g"],
    "bad": ["awful", "terrible", "so bad", "useless", "a joke"],
    "good": ["great", "excellent", "amazing", "brilliant", "really good"],
    "angry": ["angry", "annoyed", "fed up", "disappointed"],
    "happy": ["happy", "pleased", "impressed", "delighted"],
    "broke": ["stopped working", "crashed", "failed", "went down"],
    "works": ["works perfectly", "is fast", "never drops", "just works"],
    "month": ["march", "june", "september", "december"],
    "greet": ["", "", "", "hi, ", "hello, ", "hey, ", "quick question, ", "urgent: "],
}
TYPO_RATE = 0.25  # share of messages with one slip of the fingers, as in real chat

SUPPORT_LABELS = list(SUPPORT_TEMPLATES)
SENTIMENT_LABELS = list(SENTIMENT_TEMPLATES)
DEFAULT_SEED = 7


def _fill(template: str, rng: random.Random) -> str:
    values = {name: rng.choice(options) for name, options in SLOTS.items()}
    text = template.format(**values)
    # Vary surface form a little, as real people do: typos, capitalisation, punctuation.
    if rng.random() < TYPO_RATE:
        text = _typo(text, rng)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text + rng.choice(["", ".", "!", "?", " thanks"])


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    j = rng.randrange(len(words[i]) - 1)
    word = words[i]
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def _generate(templates: dict[str, list[str]], per_label: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for label, options in templates.items():
        seen: set[str] = set()
        attempts = 0
        while len(seen) < per_label and attempts < per_label * 50:
            attempts += 1
            text = _fill(options[len(seen) % len(options)], rng)
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
    rng.shuffle(rows)
    return rows


def support_messages(per_label: int = 30, seed: int = DEFAULT_SEED) -> list[tuple[str, str]]:
    """`(text, intent)` pairs, `per_label` distinct texts for each of the ten intents."""
    return _generate(SUPPORT_TEMPLATES, per_label, seed)


def sentiment_posts(per_label: int = 60, seed: int = DEFAULT_SEED) -> list[tuple[str, str]]:
    """`(text, sentiment)` pairs about the fictional Northwind Mobile."""
    return _generate(SENTIMENT_TEMPLATES, per_label, seed)


def write_csv(rows: list[tuple[str, str]], path: Path) -> Path:
    """Write `text,label` rows, so a user can look at (or edit) what the demo learns from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path
