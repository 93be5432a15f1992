"""The demo's satisfaction surveys (docs/surveys.md): the CSAT and NPS questions as templates
in the demo's languages, the CSAT policy on, and answers to the history's conversations.

- **CSAT is on, a minute after a resolution**, so the sandbox shows the whole loop: resolve a
  conversation in the console, and a minute later the customer's phone or mailbox in the
  sandbox gets the question in their language; answer "5", "penki" or ⭐⭐⭐⭐ there;
- **NPS** is on for a panel (a segment: the customers tagged ``nps-panel``), every 90 days;
- **the history's surveys:** about two thirds of the six weeks' conversations were asked an
  hour after their last message, and most answered within the hour by the email's link or
  the chat's buttons; the panel's customers were asked NPS at the same time. So the Reports
  page has CSAT and NPS per week, agent and source to show.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from hub.domain.links import LinkSigner
from hub.domain.model import Customer
from hub.domain.surveys import CSAT, NPS, SurveyPolicy
from hub.events.segments import parse_filter
from hub.runtime import Runtime
from hub.runtime.surveys import survey_spec

__all__ = ["TEMPLATES", "record_survey_history", "save_surveys"]

#: Replies that the scheduler reads as a score; the history's answers use the link or buttons.
_LINKS = (
    "{% if event.survey.links %}\n\n{% for score, url in event.survey.links.items() %}"
    "{{ score }}: {{ url }}\n{% endfor %}{% endif %}"
)


def _variant(language: str, question: str, subject: str) -> dict[str, Any]:
    return {
        "language": language,
        "text": question,
        "email": {"subject": subject, "text": question + _LINKS},
    }


TEMPLATES: dict[str, dict[str, Any]] = {
    CSAT: {
        "default_language": "en",
        "description": "The CSAT question after a resolved conversation (demo).",
        "defaults": {"first_name": ""},
        "variants": [
            _variant(
                "en",
                "How would you rate our help, {{ first_name }}? Reply with a number from 1 "
                "(poor) to 5 (excellent).",
                "How did we do?",
            ),
            _variant(
                "lt",
                "Kaip įvertintumėte mūsų pagalbą, {{ first_name }}? Atsakykite skaičiumi nuo "
                "1 (blogai) iki 5 (puikiai).",
                "Kaip mums sekėsi?",
            ),
            _variant(
                "cs",
                "Jak hodnotíte naši pomoc, {{ first_name }}? Odpovězte číslem od 1 (špatně) "
                "do 5 (výborně).",
                "Jak jsme si vedli?",
            ),
            _variant(
                "sk",
                "Ako hodnotíte našu pomoc, {{ first_name }}? Odpovedzte číslom od 1 (zle) do "
                "5 (výborne).",
                "Ako sa nám darilo?",
            ),
            _variant(
                "lv",
                "Kā jūs novērtētu mūsu palīdzību, {{ first_name }}? Atbildiet ar skaitli no 1 "
                "(slikti) līdz 5 (izcili).",
                "Kā mums veicās?",
            ),
        ],
    },
    NPS: {
        "default_language": "en",
        "description": "The NPS question (demo; the NPS policy is off).",
        "variants": [
            _variant(
                "en",
                "How likely are you to recommend us to a friend? Reply 0 (not at all) to 10 "
                "(extremely likely).",
                "Would you recommend us?",
            ),
            _variant(
                "lt",
                "Kaip tikėtina, kad rekomenduotumėte mus draugui? Atsakykite nuo 0 (visai ne) "
                "iki 10 (labai tikėtina).",
                "Ar rekomenduotumėte mus?",
            ),
            _variant(
                "cs",
                "Jak pravděpodobně byste nás doporučili příteli? Odpovězte 0 (vůbec) až 10 "
                "(určitě).",
                "Doporučili byste nás?",
            ),
            _variant(
                "sk",
                "Ako pravdepodobne by ste nás odporučili priateľovi? Odpovedzte 0 (vôbec) až "
                "10 (určite).",
                "Odporučili by ste nás?",
            ),
            _variant(
                "lv",
                "Cik ticams, ka jūs mūs ieteiktu draugam? Atbildiet no 0 (nemaz) līdz 10 "
                "(ļoti ticams).",
                "Vai jūs mūs ieteiktu?",
            ),
        ],
    },
}
#: The CSAT answers of the history, most of them good (weights per score 1..5).
_CSAT_WEIGHTS = (3, 4, 10, 30, 53)
_NPS_WEIGHTS = (1, 1, 1, 2, 2, 3, 4, 10, 16, 28, 32)
_ACTOR = "demo"
_PANEL_TAG = "nps-panel"


def save_surveys(runtime: Runtime) -> None:
    """CSAT's policy, on a minute after a resolution. After the history: a policy applies to
    resolutions recorded from when it is saved."""
    csat = SurveyPolicy(CSAT, enabled=True, template=CSAT, delay_minutes=1, every_days=0)
    runtime.commands.surveys.save_policy(csat, actor=_ACTOR)


def _nps_panel(runtime: Runtime, customers: Sequence[UUID]) -> SurveyPolicy:
    """The NPS policy: every 90 days, to the customers tagged ``nps-panel``."""
    panel = runtime.commands.segments.define(
        "NPS panel (demo)",
        parse_filter({"tag": _PANEL_TAG}),
        description="Customers asked how likely they are to recommend us, every 90 days.",
        actor=_ACTOR,
    )
    app = runtime.store.app
    for customer in customers:  # the panel's tag beside the customer's own tags
        profile: Customer = app.repository.get(customer)
        own = [app.cipher.decrypt(customer, t) or "" for t in profile.tags]
        runtime.commands.set_tags(customer, [*own, _PANEL_TAG], _ACTOR)
    return SurveyPolicy(
        NPS,
        enabled=True,
        template=NPS,
        channels=("email", "whatsapp", "sms", "chat"),
        every_days=90,
        segment_id=panel.segment_id,
    )


def record_survey_history(
    runtime: Runtime,
    threads: Sequence[tuple[UUID, UUID, str, str | None, datetime]],
    rng: random.Random,
) -> int:
    """Save the templates; ask about two thirds of ``threads`` (customer, conversation,
    channel, agent, last message) an hour after their last message, and record most answers
    within the hour; a few customers also get NPS. How many surveys were answered."""
    app = runtime.store.app
    for name, definition in TEMPLATES.items():
        app.templates.save(name, definition, actor=_ACTOR)
    policies = app.surveys
    enabled = SurveyPolicy(CSAT, enabled=True, template=CSAT, every_days=0)
    policies.save_policy(enabled, actor=_ACTOR)
    asked_about = [t for t in threads if rng.random() <= 0.66]
    panel = [t for t in asked_about if rng.random() < 0.25]
    # The panel's NPS questions went out with their CSAT ones, on the same channel; the
    # scheduler asks the panel again when 90 days have passed.
    nps = _nps_panel(runtime, [t[0] for t in panel])
    in_panel = set(panel)
    policies.save_policy(nps, actor=_ACTOR)
    signer, public_url = LinkSigner(runtime.store.links_key), runtime.settings.public_url
    answered = 0
    for thread in asked_about:
        customer, conversation, channel, agent, last = thread
        asked = last + timedelta(hours=1)
        for policy in (enabled, nps) if thread in in_panel else (enabled,):
            kind = policy.kind
            csat = kind == CSAT
            key = f"survey:{kind}:{conversation}:demo"
            spec = survey_spec(
                signer,
                public_url,
                policy,
                key,
                customer,
                asked,
                (channel,),
                conversation if csat else None,
                agent if csat else None,
            )
            [(survey_id, _)] = app.schedules.schedule([spec], None)
            outcome = app.schedules.fire(survey_id, now=asked, policy=runtime.policy)
            if outcome.message_id is None:
                continue  # refused (no consent on that channel...): as it would be
            # Sent back then: the dispatcher has nothing to do now.
            app.dispatch.record_dispatched(outcome.message_id, f"demo-{survey_id}", "sent")
            if rng.random() < 0.7:
                weights = _CSAT_WEIGHTS if csat else _NPS_WEIGHTS
                low = 1 if csat else 0
                score = rng.choices(range(low, low + len(weights)), weights)[0]
                via = "button" if channel == "chat" and csat else "link"
                at = asked + timedelta(minutes=rng.randint(2, 55))
                policies.answer(customer, survey_id, score, via=via, comment=None, at=at)
                answered += 1
    return answered
