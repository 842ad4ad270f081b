//! Street words (suffixes, endings and prefixes by language) and US state codes.

pub(super) const STREET_SUFFIXES: &[&str] = &[
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Boulevard",
    "Blvd",
    "Lane",
    "Ln",
    "Drive",
    "Dr",
    "Way",
    "Court",
    "Ct",
    "Place",
    "Pl",
    "Terrace",
    "Ter",
    "Parkway",
    "Pkwy",
    "Highway",
    "Hwy",
    "Circle",
    "Cir",
    "Square",
    "Sq",
    "Trail",
    "Trl",
    "Alley",
    "Row",
    "Crescent",
    "Close",
    "Grove",
    "Gardens",
    "Mews",
    "Walk",
    "Parade",
    "Esplanade",
    "Promenade",
    "Quay",
    "Wharf",
    "Heights",
    "Park",
    "Pike",
    "Loop",
    "Run",
    "Hollow",
    "Ridge",
    "Bend",
    "Crossing",
    "Point",
    "View",
    "Plaza",
];

pub(super) const GERMAN_STREET_ENDINGS: &[&str] = &[
    "straße", "strasse", "str.", "weg", "platz", "gasse", "allee", "ring", "damm", "ufer",
    // Dutch, Scandinavian
    "straat", "gracht", "laan", "plein", "kade", "singel", "dijk", "gatan", "gata", "gade", "vej",
    "vägen", "veien", "torget", "torv",
];

pub(super) const FRENCH_STREETS: &[&str] = &[
    "rue",
    "avenue",
    "boulevard",
    "bd",
    "place",
    "chemin",
    "allée",
    "impasse",
    "quai",
];

pub(super) const SPANISH_STREETS: &[&str] = &[
    "Calle", "Avenida", "Av.", "Paseo", "Plaza", "Via", "Viale", "Rua", "Carrer", "Camino",
    "Corso", "Piazza", "Travessa", "Largo", "Praça", "ul.", "Ul.", "ulica", "Ulica", "al.", "Jl.",
    "Jln.", "Jalan", "Lorong",
];

/// The two-letter codes of US states and territories (ZIP code context).
pub(super) const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR",
];
