//! Urgency, sentiment (with frustration), complexity and money amounts of a message, each with
//! the signals that produced it so a person can see why.
//!
//! Sentiment is VADER (Hutto & Gilbert 2014, the standard rule-based model for short informal
//! text) with its usual ±0.05 compound cut-offs. Urgency, frustration and complexity are
//! transparent pattern rules written for support traffic; the intent configuration can set an
//! urgency floor per intent (a stolen card is critical however calmly it is reported).
//! How each part was validated is in `docs/evaluation.md` (`concierge eval signals`).

use concierge_core::{
    ComplexityResult, Handling, SentimentLabel, SentimentResult, Signal, Urgency, UrgencyResult,
};
use regex::{Regex, RegexSet};
use std::sync::LazyLock;

/// Patterns of one family with their names (the signal source).
struct Patterns {
    names: Vec<&'static str>,
    set: RegexSet,
    each: Vec<Regex>,
}

impl Patterns {
    fn new(family: &[(&'static str, &'static str)]) -> Self {
        let sources: Vec<String> = family
            .iter()
            .map(|(_, p)| format!(r"(?i)\b(?:{p})"))
            .collect();
        Self {
            names: family.iter().map(|(n, _)| *n).collect(),
            // The patterns are constants checked by the unit tests; a bad one is a programming
            // error caught there, so an empty set here can never hide it in a passing build.
            set: RegexSet::new(&sources).unwrap_or_else(|_| RegexSet::empty()),
            each: sources.iter().filter_map(|p| Regex::new(p).ok()).collect(),
        }
    }

    /// `(name, matched text)` of every pattern found in `text`.
    fn find(&self, text: &str) -> Vec<(&'static str, String)> {
        self.set
            .matches(text)
            .into_iter()
            .filter_map(|i| {
                let m = self.each.get(i)?.find(text)?;
                Some((self.names[i], m.as_str().to_string()))
            })
            .collect()
    }

    #[cfg(test)]
    fn is_complete(&self) -> bool {
        self.set.len() == self.names.len() && self.each.len() == self.names.len()
    }
}

static CRITICAL: LazyLock<Patterns> = LazyLock::new(|| {
    Patterns::new(&[
        ("fraud", r"fraud\w*|scam(?:med)?\b|identity theft"),
        ("stolen", r"stolen|(?:got|been|was) robbed|theft"),
        (
            "account-compromised",
            r"hack(?:ed|er)|compromised|someone (?:else )?(?:has |is )?(?:used|using|accessed|logged)",
        ),
        (
            "unauthorized",
            r"unauthori[sz]ed|(?:didn't|did not|never) (?:make|authori[sz]e|recogni[sz]e) (?:this|that|these|a|the)",
        ),
        (
            "safety",
            r"smoke|fire\b|sparks?\b|sparking|burning smell|smells? (?:like )?burn|overheat\w*|electric shock|carbon monoxide|gas leak",
        ),
        (
            "outage",
            r"outage|(?:is|are|went) down\b|down for (?:everyone|all)|(?:nobody|no one) can (?:log|sign|access)",
        ),
        ("emergency", r"emergency|life.threatening"),
        (
            "data-breach",
            r"data breach|(?:leaked|exposed) (?:my )?(?:data|password|details)",
        ),
    ])
});

static HIGH: LazyLock<Patterns> = LazyLock::new(|| {
    Patterns::new(&[
        (
            "urgent",
            r"urgent\w*|asap\b|as soon as possible|immediately|right (?:now|away)",
        ),
        (
            "deadline",
            r"today|tonight|by tomorrow|this morning|deadline|in an hour|before (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|the weekend)",
        ),
        (
            "blocked",
            r"locked out|can(?:'t|not) (?:access|log ?in|sign ?in|get in|pay|use)|unable to (?:access|log ?in|sign ?in|pay|use)|stopped working|not working at all|completely (?:dead|broken)",
        ),
        ("lost", r"lost (?:my |the )?(?:card|phone|wallet|key)"),
        (
            "money",
            r"charged (?:twice|two times|double)|double.charged|overcharged|(?:money|funds|payment) (?:is |has )?(?:missing|gone|disappeared)",
        ),
        ("no-heat", r"no heat\w*|freezing (?:cold|house|home)"),
        (
            "swallowed",
            r"swallowed|(?:atm|machine) (?:ate|kept|took) my card",
        ),
    ])
});

static LOW: LazyLock<Patterns> = LazyLock::new(|| {
    Patterns::new(&[
        (
            "no-rush",
            r"no rush|not urgent|no hurry|whenever (?:you|it)|when(?:ever)? you (?:get|have) (?:a )?(?:chance|moment|time)|at your convenience",
        ),
        (
            "curiosity",
            r"just (?:curious|wondering)|out of curiosity|(?:was|am) wondering",
        ),
        (
            "future",
            r"feature request|suggestion|in the future|(?:would|will) (?:you|there) (?:ever|ever be)|any plans",
        ),
    ])
});

static FRUSTRATION: LazyLock<Patterns> = LazyLock::new(|| {
    Patterns::new(&[
        (
            "repeat-contact",
            r"(?:second|third|fourth|fifth|\d+(?:st|nd|rd|th)) time|again and again|(?:already|have) (?:called|asked|told|contacted|written|emailed|explained)|keep (?:asking|calling|getting|telling)|still (?:not|no|hasn't|haven't|waiting|don't|doesn't|can't)|for (?:days|weeks|months)",
        ),
        (
            "no-help",
            r"no(?: ?one|body) (?:has |is )?(?:helped|helping|answered|answering|replied|responded|cares)|(?:never|nobody) (?:got|gets|get) back|useless|waste of (?:my )?time|getting nowhere|run ?around",
        ),
        (
            "exasperation",
            r"ridiculous|unacceptable|absurd|outrageous|fed up|sick (?:and tired )?of|had enough|last straw|joke\b|pathetic|disgusting|terrible service|worst",
        ),
        (
            "churn-threat",
            r"cancel (?:my|the|our) (?:account|subscription|order) (?:and|because)|switch(?:ing)? to (?:another|a different|your competitor)|take my (?:business|money) elsewhere|never (?:buy|order|use) (?:from )?(?:you|this|again)|leav(?:e|ing) (?:you|this (?:bank|company))",
        ),
        (
            "profanity",
            r"wtf|damn\w*|hell\b|crap\w*|shit\w*|f+u+c+k\w*|bloody",
        ),
    ])
});

static JUDGMENT: LazyLock<Patterns> = LazyLock::new(|| {
    Patterns::new(&[
        ("complaint", r"complain\w*|complaint"),
        (
            "dispute",
            r"dispute\w*|chargeback|contest (?:the|this|a) (?:charge|fee)",
        ),
        (
            "exception",
            r"exception|waive\w*|goodwill|make an? except|bend the rules|outside (?:the|your) (?:policy|return window|warranty)",
        ),
        ("compensation", r"compensat\w*|reimburse\w*|damages\b"),
        (
            "legal",
            r"lawyer|attorney|legal action|sue\b|suing|court\b|ombudsman|regulator|small claims|trading standards",
        ),
        (
            "person",
            r"(?:speak|talk|chat) (?:to|with) (?:a |an |your )?(?:human|person|manager|supervisor|agent|representative|someone)|real (?:person|human)|escalate",
        ),
        (
            "discrimination",
            r"discriminat\w*|harass\w*|racis\w*|sexis\w*",
        ),
    ])
});

/// Verbs that ask for something to be done to an account, order or device.
const ACTION_VERBS: &str = r"cancel|change|update|modify|refund|return|replace|exchange|reset|block|freeze|unfreeze|unblock|unlock|close|delete|remove|transfer|send|resend|reschedule|upgrade|downgrade|activate|deactivate|renew|reorder|order|book|rebook|reactivate|verify|issue|add|top ?up|pay|withdraw|swap|move|e-?mail|start|file|submit|initiate";

static ACTION_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:(?:can|could|would|will) you(?: please)?|please|i(?:'d| would) like (?:you )?to|i (?:want|need|wish) (?:you )?to|i want|i need|help me|let me|i'm trying to|i am trying to)\s+(?:\w+\s+){{0,2}}?(?:{ACTION_VERBS})\b|^\s*(?:please\s+)?(?:{ACTION_VERBS})\b"
    ))
    .unwrap_or_else(|_| never())
});

static HOW_TO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:how (?:do|can|could|would|should) (?:i|we|you)|how to|is it possible to|where (?:do|can) i)\s+(?:\w+\s+){{0,2}}?(?:{ACTION_VERBS})\b"
    ))
    .unwrap_or_else(|_| never())
});

/// The start of a request: a question or a phrase asking for something.
static REQUEST_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:and|also|plus|oh|and also|one more thing|another thing|secondly|additionally|lastly)[,:]?\s+)*(?:can|could|would|will|do|does|did|is|are|was|were|how|what|when|where|why|which|who|should|may|i(?:'d| would) like|i want|i need|i wish|please|tell me|help me|let me know)\b")
        .unwrap_or_else(|_| never())
});

/// Openers that ask for nothing in particular ("I need help.", "Can you help me?").
static GENERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:hi|hello|hey|dear \w+|good (?:morning|afternoon|evening))?[,!.]?\s*(?:(?:i )?(?:need|want) (?:some )?(?:help|assistance|support)|(?:can|could) (?:you|someone|anyone) (?:please )?help(?: me)?(?: out)?(?: with something| with this| please)?|please help(?: me)?|help)\s*[?.!]*\s*$")
        .unwrap_or_else(|_| never())
});

/// Clause boundaries inside a sentence that often join two requests.
static JOINERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*(?:;|,?\s+and also\s+|,?\s+also,?\s+|\.?\s+another thing[,:]?\s+|\.?\s+one more thing[,:]?\s+|,?\s+plus,?\s+|,?\s+additionally,?\s+|\s+as well as\s+(?:can|could|how|what|when|where|why|is|do)\b)")
        .unwrap_or_else(|_| never())
});

static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:[$€£]\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?)|(?:\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s?(?:dollars?|usd|euros?|eur|pounds?|gbp|bucks)\b)")
        .unwrap_or_else(|_| never())
});

/// A regex that matches nothing (only reached if a constant pattern were invalid, which the
/// unit tests rule out).
fn never() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!("the empty class is a valid regex"))
}

/// Money amounts in the text (`$120`, `45.50 EUR`, `1,200 dollars`).
pub fn amounts(text: &str) -> Vec<f64> {
    AMOUNT
        .captures_iter(text)
        .filter_map(|c| {
            let whole = c.get(1).or_else(|| c.get(3))?.as_str().replace(',', "");
            let cents = c.get(2).or_else(|| c.get(4)).map_or("0", |m| m.as_str());
            format!("{whole}.{cents}").parse().ok()
        })
        .collect()
}

/// What the intent configuration tells the signals.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntentHints<'a> {
    pub intent: Option<&'a str>,
    pub handling: Option<Handling>,
    /// The configured urgency floor of the intent.
    pub urgency: Option<Urgency>,
}

pub fn sentiment(text: &str) -> SentimentResult {
    // VADER never panics on text we have seen, but it is third-party code on untrusted input:
    // a panic degrades to "neutral, no signal" instead of failing the message.
    // Sentence by sentence, then averaged over the sentences that carry sentiment, as VADER's
    // authors advise for longer texts (its negation window otherwise crosses sentence ends:
    // "still nothing. Absolutely ridiculous" would read as "not ridiculous").
    let compound = std::panic::catch_unwind(|| {
        let analyzer = vader_sentiment::SentimentIntensityAnalyzer::new();
        let scores: Vec<f64> = sentences(text)
            .iter()
            .filter_map(|s| analyzer.polarity_scores(s).get("compound").copied())
            .filter(|c| *c != 0.0)
            .collect();
        if scores.is_empty() {
            0.0
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        }
    })
    .unwrap_or(0.0);
    let label = if compound >= 0.05 {
        SentimentLabel::Positive
    } else if compound <= -0.05 {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    let mut signals: Vec<(f64, Signal)> = words(text)
        .filter_map(|w| {
            let valence = *vader_sentiment::LEXICON.get(&unicase::UniCase::new(w))?;
            Some((
                valence,
                Signal::new(format!("vader:{valence:+.1}"), w.to_lowercase()),
            ))
        })
        .collect();
    signals.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    signals.dedup_by(|a, b| a.1.evidence == b.1.evidence);
    let mut signals: Vec<Signal> = signals.into_iter().take(5).map(|(_, s)| s).collect();

    let mut frustration: Vec<Signal> = FRUSTRATION
        .find(text)
        .into_iter()
        .map(|(name, m)| Signal::new(format!("frustration:{name}"), m))
        .collect();
    let shouted: Vec<&str> = words(text)
        .filter(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_uppercase()))
        .collect();
    if shouted.len() >= 2 {
        frustration.push(Signal::new("frustration:capitals", shouted.join(" ")));
    }
    if let Some(m) = ["!!", "?!", "!?", "??"].iter().find(|p| text.contains(**p)) {
        frustration.push(Signal::new("frustration:punctuation", *m));
    }
    let frustrated = (compound <= -0.25 && !frustration.is_empty()) || frustration.len() >= 2;
    signals.extend(frustration);
    SentimentResult {
        label,
        score: compound as f32,
        frustrated,
        signals,
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
}

pub fn urgency(text: &str, hints: IntentHints<'_>, sentiment: &SentimentResult) -> UrgencyResult {
    let mut signals = Vec::new();
    let low = LOW.find(text);
    let critical = CRITICAL.find(text);
    // "not urgent" must not count as "urgent".
    let high: Vec<_> = HIGH
        .find(text)
        .into_iter()
        .filter(|(name, _)| !(*name == "urgent" && low.iter().any(|(n, _)| *n == "no-rush")))
        .collect();
    let mut level = if !critical.is_empty() {
        Urgency::Critical
    } else if !high.is_empty() {
        Urgency::High
    } else if !low.is_empty() {
        Urgency::Low
    } else {
        Urgency::Normal
    };
    for (family, found) in [("critical", &critical), ("high", &high), ("low", &low)] {
        for (name, m) in found.iter() {
            signals.push(Signal::new(format!("{family}:{name}"), m.clone()));
        }
    }
    if let Some(floor) = hints.urgency
        && floor > level
    {
        level = floor;
        signals.push(Signal::new(
            format!("intent:{}", hints.intent.unwrap_or("?")),
            format!("configured urgency {}", floor.as_str()),
        ));
    }
    if sentiment.frustrated && level == Urgency::Normal {
        level = Urgency::High;
        signals.push(Signal::new("sentiment:frustrated", "frustrated customer"));
    }
    UrgencyResult { level, signals }
}

/// Splits a message into sentences and joined clauses.
fn segments(text: &str) -> Vec<String> {
    sentences(text)
        .into_iter()
        .flat_map(|s| {
            JOINERS
                .split(&s)
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| s.chars().filter(|c| c.is_alphanumeric()).count() >= 3)
        .collect()
}

/// Splits a message after `?`, `!`, `.` (not inside numbers) and line breaks.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        current.push(*c);
        let end = matches!(c, '?' | '!' | '.' | '\n')
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
            // "e.g." and decimals stay inside.
            && !(*c == '.' && current.trim_end_matches('.').ends_with(|ch: char| ch.is_ascii_digit()) && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()));
        if end {
            out.push(std::mem::take(&mut current));
        }
    }
    out.push(current);
    out.retain(|s| !s.trim().is_empty());
    out
}

fn is_request(segment: &str) -> bool {
    if GENERIC.is_match(segment) {
        return false;
    }
    segment.trim_end().ends_with('?')
        || REQUEST_START.is_match(segment)
        || ACTION_REQUEST.is_match(segment)
}

pub fn complexity(
    text: &str,
    hints: IntentHints<'_>,
    sentiment: &SentimentResult,
) -> ComplexityResult {
    let mut signals = Vec::new();
    let requests: Vec<String> = segments(text)
        .into_iter()
        .filter(|s| is_request(s))
        .collect();
    let multiple_requests = requests.len() >= 2;
    if multiple_requests {
        for r in &requests {
            signals.push(Signal::new("request", r.clone()));
        }
    }

    let how_to = HOW_TO.find(text).map(|m| m.as_str().to_string());
    let asked = ACTION_REQUEST
        .find(text)
        .map(|m| m.as_str().trim().to_string());
    let mut needs_action = false;
    if let Some(a) = asked {
        needs_action = true;
        signals.push(Signal::new("action:request", a));
    } else if let Some(h) = how_to {
        // "How do I cancel?" asks for instructions, not for us to cancel.
        signals.push(Signal::new("action:how-to", h));
    }
    if hints.handling == Some(Handling::Procedure) {
        needs_action = true;
        signals.push(Signal::new(
            format!("intent:{}", hints.intent.unwrap_or("?")),
            "handled by a procedure",
        ));
    }

    let judgment = JUDGMENT.find(text);
    let mut needs_human_judgment = !judgment.is_empty();
    for (name, m) in judgment {
        signals.push(Signal::new(format!("judgment:{name}"), m));
    }
    if hints.handling == Some(Handling::Human) {
        needs_human_judgment = true;
        signals.push(Signal::new(
            format!("intent:{}", hints.intent.unwrap_or("?")),
            "handled by a person",
        ));
    }
    if sentiment.frustrated && sentiment.label == SentimentLabel::Negative {
        needs_human_judgment = true;
        signals.push(Signal::new(
            "sentiment:frustrated",
            "negative and frustrated",
        ));
    }
    ComplexityResult {
        multiple_requests,
        needs_action,
        needs_human_judgment,
        signals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> IntentHints<'static> {
        IntentHints::default()
    }

    #[test]
    fn every_pattern_compiles() {
        for p in [&*CRITICAL, &*HIGH, &*LOW, &*FRUSTRATION, &*JUDGMENT] {
            assert!(p.is_complete());
        }
        for r in [
            &*ACTION_REQUEST,
            &*HOW_TO,
            &*REQUEST_START,
            &*GENERIC,
            &*JOINERS,
            &*AMOUNT,
        ] {
            assert_ne!(r.as_str(), never().as_str());
        }
    }

    #[test]
    fn urgency_levels_with_their_signals() {
        let cases = [
            (
                "Someone used my card without permission, I think it was stolen",
                Urgency::Critical,
            ),
            (
                "There is smoke coming out of the thermostat",
                Urgency::Critical,
            ),
            (
                "I need this fixed today, I'm locked out of my account",
                Urgency::High,
            ),
            ("I was charged twice for my order", Urgency::High),
            ("Where can I find the user manual?", Urgency::Normal),
            (
                "No rush, but is there a dark mode planned? Just curious.",
                Urgency::Low,
            ),
            ("This is not urgent: can I change my email?", Urgency::Low),
        ];
        for (text, expected) in cases {
            let s = sentiment(text);
            let u = urgency(text, none(), &s);
            assert_eq!(u.level, expected, "{text}: {:?}", u.signals);
            if expected != Urgency::Normal {
                assert!(!u.signals.is_empty(), "{text}");
            }
        }
    }

    #[test]
    fn the_intent_sets_an_urgency_floor() {
        let text = "Please block my card";
        let hints = IntentHints {
            intent: Some("lost_card"),
            handling: Some(Handling::Procedure),
            urgency: Some(Urgency::Critical),
        };
        let u = urgency(text, hints, &sentiment(text));
        assert_eq!(u.level, Urgency::Critical);
        assert!(u.signals.iter().any(|s| s.source == "intent:lost_card"));
    }

    #[test]
    fn sentiment_and_frustration() {
        let happy = sentiment("Thanks so much, the new hub works great!");
        assert_eq!(happy.label, SentimentLabel::Positive);
        assert!(!happy.frustrated);
        assert!(happy.signals.iter().any(|s| s.evidence == "great"));

        let neutral = sentiment("What is the return window for a thermostat?");
        assert_eq!(neutral.label, SentimentLabel::Neutral);

        let angry = sentiment(
            "This is the third time I'm writing and STILL NOTHING. Absolutely ridiculous!!",
        );
        assert_eq!(angry.label, SentimentLabel::Negative);
        assert!(angry.frustrated, "{:?}", angry.signals);
        assert!(
            angry
                .signals
                .iter()
                .any(|s| s.source == "frustration:repeat-contact")
        );

        let sad_but_calm = sentiment("My package arrived damaged, unfortunately.");
        assert_eq!(sad_but_calm.label, SentimentLabel::Negative);
        assert!(!sad_but_calm.frustrated);
    }

    #[test]
    fn complexity_flags() {
        let one = complexity(
            "Hi, I need help. Where is my order? It was supposed to arrive Monday.",
            none(),
            &sentiment(""),
        );
        assert!(!one.multiple_requests, "{:?}", one.signals);
        assert!(!one.needs_action);

        let two = complexity(
            "Can you cancel order NH-1001? Also, how long do refunds take?",
            none(),
            &sentiment(""),
        );
        assert!(two.multiple_requests, "{:?}", two.signals);
        assert!(two.needs_action);

        let joined = complexity(
            "I want to update my shipping address and also what is the warranty on the hub",
            none(),
            &sentiment(""),
        );
        assert!(joined.multiple_requests, "{:?}", joined.signals);

        let how = complexity("How do I reset my thermostat?", none(), &sentiment(""));
        assert!(!how.needs_action);
        assert!(how.signals.iter().any(|s| s.source == "action:how-to"));

        let judge = complexity(
            "I want to file a complaint and speak to a manager",
            none(),
            &sentiment(""),
        );
        assert!(judge.needs_human_judgment);
        assert!(judge.signals.iter().any(|s| s.source == "judgment:person"));

        let calm = complexity(
            "What colours does the smart bulb come in?",
            none(),
            &sentiment(""),
        );
        assert!(!calm.needs_human_judgment && !calm.needs_action && !calm.multiple_requests);
    }

    #[test]
    fn money_amounts() {
        assert_eq!(amounts("Refund $120 please"), vec![120.0]);
        assert_eq!(
            amounts("It cost 45.50 EUR, not £1,200.99"),
            vec![45.5, 1200.99]
        );
        assert_eq!(amounts("I ordered 3 bulbs on May 5"), Vec::<f64>::new());
        assert_eq!(amounts("about 200 dollars"), vec![200.0]);
    }
}
