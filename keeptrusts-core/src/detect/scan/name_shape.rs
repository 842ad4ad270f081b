//! The shape of name words: surname endings, the folded spelling an e-mail address uses, and
//! the letter case of a name.

/// Whether a capitalized word that is in no list has the ending of a surname in the languages
/// that mark them (`Horáková`, `Wiśniewski`, `Kowalczyk`, `Petrović`, `Popescu`, `Yılmazoğlu`,
/// `Papadopoulos`, `Hakobyan`, `Beridze`, `Gunnarsdóttir`, `Shevchenko`): a surname's shape,
/// a feature no everyday word of those languages has at that length.
pub(super) fn surname_shape(word: &str) -> bool {
    const ENDINGS: &[&str] = &[
        "ová", "ski", "ska", "wicz", "czyk", "ović", "ević", "ovic", "evic", "escu", "oğlu",
        "oglu", "opoulos", "poulou", "akis", "idis", "yan", "shvili", "dze", "dóttir", "enko",
        "chuk", "vich", "ovna",
    ];
    word.chars().count() >= 6 && ENDINGS.iter().any(|e| word.ends_with(e))
}

/// A name word lowercased with its Latin accents dropped, as an e-mail address spells it
/// (`Siobhán` → `siobhan`, `Łukasz` → `lukasz`); other letters are left out.
pub(super) fn fold(word: &str) -> String {
    word.chars()
        .filter_map(|c| {
            let c = c.to_lowercase().next().unwrap_or(c);
            if c.is_ascii_alphabetic() {
                return Some(c);
            }
            let base = match c {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
                'ç' | 'ć' | 'č' => 'c',
                'ď' | 'đ' => 'd',
                'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
                'ğ' => 'g',
                'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
                'ł' | 'ľ' | 'ĺ' => 'l',
                'ñ' | 'ń' | 'ň' => 'n',
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
                'ŕ' | 'ř' => 'r',
                'ś' | 'š' | 'ş' | 'ș' => 's',
                'ť' | 'ţ' | 'ț' => 't',
                'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
                'ý' | 'ÿ' => 'y',
                'ź' | 'ż' | 'ž' => 'z',
                _ => return None,
            };
            Some(base)
        })
        .collect()
}

/// A name's case after its first letter, from each later character's (lowercase, uppercase,
/// joiner) flags: at least one lowercase letter, never two capitals in a row (McDonald yes, API
/// no), and a capital inside only after a short prefix or a joiner (MacLeod, DeShawn,
/// Smith-Jones; not TestClient, ProviderKind).
pub(super) fn name_case(flags: impl Iterator<Item = (bool, bool, bool)>) -> bool {
    let mut lower = false;
    let mut prev_upper = true;
    let mut prev_joiner = false;
    for (k, (is_lower, is_upper, joiner)) in flags.enumerate() {
        if is_lower {
            lower = true;
            prev_upper = false;
        } else if is_upper {
            if prev_upper || (k > 2 && !prev_joiner) {
                return false;
            }
            prev_upper = true;
        } else {
            prev_upper = false;
        }
        prev_joiner = joiner;
    }
    lower
}
