"""Reading a stage-1 answer: yes, no, a refusal, or undetermined. Never a guess.

Models rarely answer with one bare word. They reason in <think> blocks, state a verdict without
saying yes ("The image appears to be AI-generated."), negate ("no signs of tampering"), hedge,
decline, answer in the prompt's language or in JSON. The reader works in this order:

1. empty -> refusal; reasoning blocks are dropped (an unfinished one means no answer came);
2. a JSON object with an answer field is read by its field;
3. a leading answer word ("No, ...", "是的，...") decides, unless the same sentence says it
   cannot tell ("No, I can't determine whether ...") or the rest states the opposite verdict;
4. otherwise the verdict statements decide: words for generated / edited / fake against words
   for real / authentic, each flipped by a negation earlier in its clause ("not AI-generated",
   "没有被篡改"). Claims under "whether ...", "cannot say that ...", "cannot rule out ..." and
   "no doubt" are taken out first, as they are not verdicts either way;
5. with no verdict: declining language -> refusal; hedges or inability -> undetermined; an
   answer word in a sentence of its own ("The answer is yes.") -> that answer.

Refusal = the model declines (apology, policy, "as an AI", "I can't help"); undetermined = it
engages but gives no verdict (hedges both ways, "I cannot determine whether", describes the
image, reasoning cut off). Neither is a vote. The corpus in tests/mllm_fixtures/answers/ pins
the behaviour: add an answer there when a model's wording is misread.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from ..types.llm import VoteLabel
from .jsontext import extract_json_object

AnswerClass = Literal["yes", "no", "refusal", "undetermined"]
Polarity = Literal["fake", "real", "both"]

# -- vocabulary (English, Chinese, Spanish, German, French) ------------------------------------
_YES_WORDS = r"yes|yeah|yep|yup|true|sí|si|ja|oui|是的|是|对"
_NO_WORDS = r"no|nope|nah|false|nein|non|否|不是|不"
_LEAD = re.compile(
    rf"^\s*(?P<word>{_YES_WORDS}|{_NO_WORDS})(?P<after>\s*(?:$|[.,!;:\-)\n]|。|，|！))",
)
_YES_SET = frozenset(_YES_WORDS.split("|"))
_LABEL_PREFIX = re.compile(
    r"^\s*(?:final\s+)?(?:answer|response|verdict|result|output|回答|答案|判断|结论|respuesta|"
    r"antwort)"
    r"\s*[:：]\s*"
)
_REASONING = re.compile(
    r"<(think|thinking|reasoning|thought)>.*?</\1>|◁think▷.*?◁/think▷", re.DOTALL | re.IGNORECASE
)
_OPEN_REASONING = re.compile(r"<(?:think|thinking|reasoning|thought)>|◁think▷", re.IGNORECASE)
_CLOSE_REASONING = re.compile(r"</(?:think|thinking|reasoning|thought)>|◁/think▷", re.IGNORECASE)

_GEN = (
    r"ai[- ]?generat\w*|generated|generation|computer[- ]generated|synthetic|synthesi[sz]ed|"
    r"rendered|cgi|deep ?fakes?|artificially created|(?:made|created|produced) (?:by|with) ai|"
    r"generative (?:models?|ai|networks?)|ai|ai[- ]made|"
    r"generad[ao]s?|sintétic[ao]s?|inteligencia artificial|ki[- ]?(?:generiert|erzeugt)|"
    r"erzeugt|generiert|künstlich|générée?s?|synthétiques?"
)
_EDIT = (
    r"tamper\w*|manipulat\w*|edited|editing|edits|altered|alterations?|doctored|photoshopped|"
    r"forged|forgery|spliced|splicing|composited?|inpaint\w*|swapped|face[- ]?swap\w*|"
    r"retouched|modified|pasted|replaced|inserted|added digitally|digitally added|"
    r"manipulad[ao]s?|manipulación|editad[ao]s?|"
    r"alterad[ao]s?|modificad[ao]s?|retocad[ao]s?|manipuliert|bearbeitet|verändert|"
    r"retuschiert|manipulée?s?|modifiée?s?|retouchée?s?|truquée?s?"
)
_FAKE = r"fake|faked|suspicious|falso|falsa|gefälscht|faux|fausse"
_REAL = (
    r"real|genuine|authentic|unedited|unaltered|untouched|unmanipulated|untampered|unmodified|"
    r"natural|legitimate|legit|auténtic[ao]s?|genuin[ao]s?|verdader[ao]s?|echt|authentisch|"
    r"unbearbeitet|authentique|réelle?|vraie?"
)
_FAKE_CJK = "生成|人工智能|合成|篡改|修改|编辑|伪造|处理|假的|假"
_REAL_CJK = "真实|真的|原始|原图"


def _terms(latin: str, cjk: str) -> re.Pattern[str]:
    # Latin words need word boundaries ("unedited" is not "edited"); Chinese has no spaces.
    return re.compile(rf"(?<![\w-])(?:{latin})(?![\w-])|{cjk}")


_FAKE_TERMS = _terms(f"{_GEN}|{_EDIT}|{_FAKE}", _FAKE_CJK)
_REAL_TERMS = _terms(_REAL, _REAL_CJK)
_NEGATOR = re.compile(
    r"(?<![\w-])(?:not|no|never|without|nothing|none|nor|neither|unlikely|hardly|cannot|"
    r"\w+n't|lack of|absence of|free of|sin|nunca|ningún|ninguna|nicht|kein\w*|ohne|nie|"
    r"pas|sans|aucune?|jamais)(?![\w-])|没有|没|未|不|无|非|并非"
)
# Clause ends: a negation's scope and a removed claim stop here.
_CLAUSE_END = r"[,.;:!?\n()]|。|，|；|！|？| but | however | although | though | while | yet "
_CLAUSE_SPLIT = re.compile(
    r"[,.;:!?\n()]|。|，|；|！|？|\b(?:but|however|although|though|whereas|yet|aber|pero|mais)\b|"
    r"但是|但|不过"
)
_REST = rf"(?:(?!{_CLAUSE_END}).)*"

# Claims that are not verdicts: removed before reading polarity (each also flags why).
_NO_DOUBT = re.compile(
    r"\b(?:there(?: is|'s| can be)? )?(?:no|without (?:a|any)|beyond (?:a|any)) doubt"
    r"(?: about it)?(?: that)?|\bundoubtedly\b|\bno question (?:that|about it)\b"
)
_INABILITY = re.compile(
    r"(?:can ?not|can't|couldn't|unable to|not able to|impossible to|hard to|difficult to|"
    r"no way to|not possible to|not sure|not certain|"
    r"(?:do not|don't) have (?:enough|sufficient) (?:information|context|detail))"
    r"(?: (?:completely|fully|entirely|really|definitively|reliably|100%|be))*"
    rf"(?: (?:say|tell|determine|confirm|verify|know|judge|conclude|be sure|be certain|"
    rf"sure|certain|(?:give|provide) an? (?:definitive|definite|clear|conclusive|certain) "
    rf"(?:answer|assessment|verdict)|decide)){_REST}"
    r"|\bno puedo (?:determinar|decir|saber|confirmar|verificar|asegurar)" + _REST + "|"
    r"\b(?:kann|können) (?:ich |wir )?(?:nicht|kaum) (?:feststellen|sagen|beurteilen|erkennen|"
    r"bestimmen)" + _REST + "|"
    r"\bje ne (?:peux|sais) pas" + _REST + "|"
    r"(?:无法|不能|难以|没法)(?:确定|判断|确认|得知|分辨|判定)" + _REST + "|不确定" + _REST
)
_RULE_OUT = re.compile(
    rf"(?:can ?not|can't|couldn't|unable to)(?: completely| fully| entirely)? rule out{_REST}"
)
_WHETHER = re.compile(rf"\b(?:whether|ob)\b{_REST}|\bif\b{_REST}|是否{_REST}")
_DECLINE_VERB = re.compile(
    r"(?:can ?not|can't|won't|will not|unable to|not able to|(?:must )?decline to|"
    r"am not going to)(?: (?:help|assist|provide|analy[sz]e|assess|evaluate|judge|identify|"
    rf"comply|comment|answer|process|do|make))\b{_REST}"
    rf"|\bno puedo ayudar{_REST}|kann ich nicht helfen{_REST}|(?:无法|不能)(?:帮助|协助){_REST}"
)
_DECLINE = re.compile(
    r"\bi(?: a|')m sorry\b|\bsorry, (?:but )?i\b|\bi (?:apologi[sz]e|must decline|decline)\b|"
    r"\b(?:i(?:'m| am) an ai|as an ai)(?: language model| model| assistant)?\b|"
    r"\b(?:against|violates?) (?:my|our|the) (?:policy|policies|guidelines)\b|"
    r"\blo siento\b|\bes tut mir leid\b|\bdésolée?\b|抱歉|对不起|很遗憾"
)
_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|unclear|uncertain|unsure|undetermined|inconclusive|unknown|"
    r"either way|may or may not|might or might not|could go either way|50/50|n/a)\b|"
    r"\bquizás\b|\bvielleicht\b|\bpeut-être\b|也许|或许|不好说|说不准"
)
_BOTH_WAYS = re.compile(
    r"\b(?:may or may not|might or might not|could go either way|either way|50/50)\b"
)
_MODAL = re.compile(r"\b(?:could|might|may|possibly|either|podría|könnte)\b|可能|或者|或许")
_TOKEN_ANSWER = re.compile(
    rf"(?:\b(?:answer is|answer would be|i(?:'d| would) say|i think|i believe|be|is|likely|"
    rf"probably|definitely|certainly|lean(?:ing|s)? towards?)\s+"
    rf"(?P<a>{_YES_WORDS}|{_NO_WORDS})\b)|(?:^|[.!?\n]\s*)(?P<b>{_YES_WORDS}|{_NO_WORDS})\s*"
    r"(?:[.!]|$)"
)
_NO_PHRASES = re.compile(
    r"\bi (?:don't|do not) (?:think|believe) so\b|\b(?:probably|certainly|definitely|"
    r"absolutely) not\b|\bnot really\b"
)
_YES_PHRASES = re.compile(r"\bi (?:think|believe) so\b|\b(?:most likely|definitely) yes\b")


@dataclass(frozen=True)
class _Reading:
    polarity: Polarity | None
    declined: bool
    unsure: bool  # inability, hedge or both-ways language
    modal: bool


def normalise_answer(text: str) -> str:
    """Lower case, NFKC (full-width punctuation), straight quotes, no markdown emphasis."""
    t = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
    t = re.sub(r"[\u2012-\u2015]", " - ", t)
    t = re.sub(r"[*_`#>]+", "", t).lower()
    return re.sub(r"[ \t]+", " ", t).strip()


def strip_reasoning(text: str) -> tuple[str, bool]:
    """(text without reasoning blocks, True when a block was opened and never closed)."""
    out = _REASONING.sub(" ", text)
    closes = list(_CLOSE_REASONING.finditer(out))
    if closes:  # the opening tag was eaten by the chat template: keep what follows the last
        out = out[closes[-1].end() :]
    opened = _OPEN_REASONING.search(out)
    if opened:
        return out[: opened.start()], True
    return out, False


def _clauses_polarity(text: str) -> tuple[bool, bool, bool]:
    """(fake claim, real claim, real claim that is only a negated fake term) in `text`."""
    fake = real = real_from_negation_only = False
    plain_real = False
    for clause in _CLAUSE_SPLIT.split(text):
        if not clause or not clause.strip():
            continue
        negators = [m.start() for m in _NEGATOR.finditer(clause)]
        for terms, is_fake in ((_FAKE_TERMS, True), (_REAL_TERMS, False)):
            for m in terms.finditer(clause):
                flipped = sum(1 for n in negators if n < m.start()) % 2 == 1
                says_fake = is_fake != flipped
                if says_fake:
                    fake = True
                else:
                    real = True
                    plain_real = plain_real or not is_fake
    real_from_negation_only = real and not plain_real
    return fake, real, real_from_negation_only


def read_statements(text: str) -> _Reading:
    """The verdict the statements of `text` make, and whether it declines or is unsure."""
    t = _NO_DOUBT.sub(" ", text)
    unsure = bool(_HEDGE.search(t))
    declined = bool(_DECLINE.search(t))
    t = _DECLINE.sub(" ", t)  # "as an AI" is not a claim that the image is AI
    for pattern, flag in ((_INABILITY, "unsure"), (_DECLINE_VERB, "decline"),
                          (_RULE_OUT, "hedge"), (_WHETHER, "whether")):  # fmt: skip
        if pattern.search(t):
            declined = declined or flag == "decline"
            unsure = unsure or flag == "unsure"
            t = pattern.sub(" ", t)
    fake, real, real_by_negation = _clauses_polarity(t)
    modal = bool(_MODAL.search(t))
    polarity: Polarity | None = None
    if fake and real:
        # A real scene with an edited part is tampered ("the background is real, but the face
        # was swapped"); with a modal ("could be real or AI-generated") it is undecided.
        polarity = "both" if modal and not real_by_negation else "fake"
    elif fake or real:
        polarity = "fake" if fake else "real"
    if _BOTH_WAYS.search(text):
        polarity = "both"
    return _Reading(polarity, declined, unsure, modal)


def _json_answer(text: str) -> tuple[AnswerClass, str | None] | None:
    """The answer field of a JSON answer, or None when the text carries none."""
    if "{" not in text:
        return None
    obj = extract_json_object(text)
    if not obj:
        return None
    keys = {re.sub(r"[^a-z]+", "_", str(k).lower()).strip("_"): v for k, v in obj.items()}
    for key, value in keys.items():
        inverted = key in ("real", "is_real", "authentic", "is_authentic", "genuine", "is_genuine")
        if not inverted and key not in _JSON_ANSWER_KEYS:
            continue
        if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
            return ("yes" if bool(value) != inverted else "no"), None
        if isinstance(value, str):
            label, reason = classify_answer(value)
            if inverted and label in ("yes", "no"):
                label = "no" if label == "yes" else "yes"
            return label, reason
        why = " ".join(str(keys.get(k) or "") for k in ("reason", "explanation", "rationale"))
        label, reason = classify_answer(why)
        return (label, reason) if label == "refusal" else ("undetermined", "undetermined")
    return None


_JSON_ANSWER_KEYS = frozenset(
    "answer response result verdict label prediction decision classification output "
    "final_answer is_fake fake tampered is_tampered manipulated is_manipulated ai_generated "
    "is_ai_generated generated is_generated synthetic is_synthetic".split()
)


def _from_reading(r: _Reading, text: str) -> tuple[AnswerClass, str | None]:
    if r.polarity == "fake":
        return "yes", None
    if r.polarity == "real":
        return "no", None
    if r.polarity == "both":
        return "undetermined", "conflicting"
    if r.declined:
        return "refusal", "policy"
    if r.unsure:
        return "undetermined", "undetermined"
    answers = {m.group("a") or m.group("b") for m in _TOKEN_ANSWER.finditer(text)}
    yes = any(a in _YES_SET for a in answers) or bool(_YES_PHRASES.search(text))
    no = any(a not in _YES_SET for a in answers) or bool(_NO_PHRASES.search(text))
    if yes != no:
        return ("yes" if yes else "no"), None
    return "undetermined", ("conflicting" if yes else "non_answer")


def classify_answer(text: str | None) -> tuple[AnswerClass, str | None]:
    """(yes | no | refusal | undetermined, reason). Reasons: refusal -> 'empty' or 'policy';
    undetermined -> 'undetermined' (hedge, cannot tell), 'conflicting', 'non_answer' or
    'unfinished_reasoning'."""
    if text is None or not text.strip():
        return "refusal", "empty"
    body, unfinished = strip_reasoning(text)
    if not body.strip():
        return "undetermined", ("unfinished_reasoning" if unfinished else "non_answer")
    found = _json_answer(body)
    if found is not None:
        return found
    t = _LABEL_PREFIX.sub("", normalise_answer(body))
    lead = _LEAD.match(t)
    if lead is None:
        return _from_reading(read_statements(t), t)
    answer: AnswerClass = "yes" if lead.group("word") in _YES_SET else "no"
    rest = t[lead.end() :]
    if lead.group("after").strip() in (",", "-", ":", "，"):  # the same sentence goes on
        own = read_statements(re.split(r"[.!?\n。！？]", rest, maxsplit=1)[0])
        if own.declined and own.polarity is None:
            return "refusal", "policy"
        if own.unsure and own.polarity is None:
            return "undetermined", "undetermined"
    stated = read_statements(rest).polarity
    if stated is not None and stated != ("fake" if answer == "yes" else "real"):
        return "undetermined", "conflicting"  # "Yes, it's authentic."
    return answer, None


def parse_yes_no(text: str | None) -> tuple[VoteLabel, str | None]:
    """(label, reason) as votes are counted: yes, no, or 'refusal' for every answer that is
    not a vote, its reason saying which kind ('empty', 'policy', 'undetermined', ...)."""
    label, reason = classify_answer(text)
    if label in ("yes", "no"):
        return label, None
    return "refusal", reason


def answer_class(label: str, reason: str | None) -> AnswerClass:
    """The four-way class of a counted answer (a Stage1Answer's label and refusal_reason)."""
    if label in ("yes", "no"):
        return label  # type: ignore[return-value]
    return "refusal" if reason in (None, "empty", "policy") else "undetermined"
