//! Cases for the built-in scanner's numbers, dates, phones, devices, secrets and cards (issue 20,
//! second round), one test per class, in several languages each, with the look-alikes that must
//! stay unflagged next to them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::builtin::BuiltinDetector;
use super::cases::{assert_sound, scan};
use super::{resolve_overlaps, Detector, EntityType};

/// Every case: `text` holds exactly one finding, `want` of type `e`.
fn only(cases: &[(&str, &str)], e: EntityType) {
    for &(t, want) in cases {
        assert_eq!(scan(t), [(e, want)], "{t}");
    }
}

/// Every text holds no finding at all.
fn none(texts: &[&str]) {
    for t in texts {
        assert_eq!(scan(t), [], "{t}");
    }
}

#[test]
fn dates_of_birth_in_many_forms() {
    only(
        &[
            ("Geburtsdatum: 25.07.1948", "25.07.1948"),
            ("geb. 25.07.1948 in Köln", "25.07.1948"),
            ("DOB 1975/04/14", "1975/04/14"),
            ("date of birth: 1962-03-14", "1962-03-14"),
            ("出生日期：1985年7月6日", "1985年7月6日"),
            ("她出生于1992年11月3日。", "1992年11月3日"),
            ("生年月日: 1985年7月6日", "1985年7月6日"),
            ("생년월일: 1990년 3월 15일", "1990년 3월 15일"),
            (
                "fecha de nacimiento: 26 de octubre de 1990",
                "26 de octubre de 1990",
            ),
            ("née le 3 mars 1984 à Lyon", "3 mars 1984"),
            ("geboren am 3. März 1984", "3. März 1984"),
            ("I was born on July 4th, 1976.", "July 4th, 1976"),
            ("born 4th July 1976 in Leeds", "4th July 1976"),
            ("Дата рождения: 12.04.1986", "12.04.1986"),
            ("data urodzenia: 1988-11-30", "1988-11-30"),
            ("data di nascita 12/05/1979", "12/05/1979"),
            ("geboortedatum 14-02-1991", "14-02-1991"),
            // the cue a few words before, past words that describe other values
            (
                "Date of birth (as printed on the card): 14/03/1962",
                "14/03/1962",
            ),
        ],
        EntityType::DateOfBirth,
    );
    // no cue: a full date right after a name, before 2010
    for (t, want) in [
        (
            "Patient: Ruth Okafor (02/11/1957) presents with a cough.",
            "02/11/1957",
        ),
        ("Name: Jan Novák, 25.07.1948, Brno", "25.07.1948"),
    ] {
        let dob: Vec<&str> = scan(t)
            .into_iter()
            .filter(|f| f.0 == EntityType::DateOfBirth)
            .map(|f| f.1)
            .collect();
        assert_eq!(dob, [want], "{t}");
    }
    none(&[
        "Released on 25.07.2021 with the new installer.",
        "Meeting 2024-05-03 10:00 in room B.",
        "版本发布于2023年5月1日。",
        "Rechnung vom 15.08.2024, fällig am 30.08.2024.",
        "The meeting moved from 2024/03/14 to 2024/03/21.",
        "2023年度の売上は12月1日に発表します。",
    ]);
    // a recent date after a name is an event, not a birth
    let t = "Author: Lena Fischer, 2024-05-03";
    assert!(
        scan(t).iter().all(|f| f.0 != EntityType::DateOfBirth),
        "{t}"
    );
}

/// Month names and the phrases that make a date a person's, in the languages the other rules
/// cover: a visit, an admission, a discharge or a death in Italian, French, Spanish, German,
/// Portuguese and Dutch is a DATE as `visit on 9 April 2024` is; a birth in Polish, Czech,
/// Turkish, Dutch and Swedish a DATE_OF_BIRTH; a month-name date with no such phrase stays
/// unflagged in every language.
#[test]
fn month_dates_with_a_persons_phrase_in_more_languages() {
    only(
        &[
            ("Visita del 9 aprile 2024 alle 10", "9 aprile 2024"),
            ("Hospitalisé le 3 mars 2024", "3 mars 2024"),
            ("Ingresado el 3 de marzo de 2024", "3 de marzo de 2024"),
            ("Untersuchung am 3. März 2024", "3. März 2024"),
            ("Internado em 3 de março de 2024", "3 de março de 2024"),
            ("Opgenomen op 3 maart 2024", "3 maart 2024"),
        ],
        EntityType::Date,
    );
    only(
        &[
            ("Urodzona 3 marca 1985 r.", "3 marca 1985"),
            ("Datum narození: 3. března 1985", "3. března 1985"),
            ("Doğum tarihi: 3 Mart 1985", "3 Mart 1985"),
            ("Geboren op 12 mei 1990", "12 mei 1990"),
            ("Född 3 augusti 1985", "3 augusti 1985"),
        ],
        EntityType::DateOfBirth,
    );
    none(&[
        "Il film esce il 3 marzo 2024.",
        "La version sort le 3 mars 2024.",
        "Die Konferenz beginnt am 3. März 2024.",
        "De release is op 3 maart 2024.",
        "Sürüm 3 Mart 2024 tarihinde çıktı.",
    ]);
}

#[test]
fn national_phone_formats() {
    only(
        &[
            ("Telefon: 0211/2542890", "0211/2542890"),
            ("Handy 0170 46829402, ab 18 Uhr", "0170 46829402"),
            ("Tel.: (21) 9249-7822", "(21) 9249-7822"),
            ("Ligue para (21) 99249-7822 hoje", "(21) 99249-7822"),
            ("电话：13812345678", "13812345678"),
            ("手机号码是139 1234 5678。", "139 1234 5678"),
            ("携帯：090-1234-5678", "090-1234-5678"),
            ("090-1234-5678までご連絡ください。", "090-1234-5678"),
            ("전화번호: 010-1234-5678", "010-1234-5678"),
            ("joignable au 05.53.18.69.64 le matin", "05.53.18.69.64"),
            ("au 06 12 34 56 78 ou par mail", "06 12 34 56 78"),
            ("ring me on 020 7946 0958 after lunch", "020 7946 0958"),
            ("Desk: 6507527354", "6507527354"),
            ("Tel 4155550132", "4155550132"),
            ("Cellulare: 347 123 4567", "347 123 4567"),
            ("Teléfono: 612 34 56 78", "612 34 56 78"),
            ("Телефон: +7 916 123-45-67", "+7 916 123-45-67"),
            ("mijn nummer is 06-12345678", "06-12345678"),
        ],
        EntityType::Phone,
    );
    // extensions and suffixes
    only(
        &[
            ("Call 650-752-7354x549 today", "650-752-7354x549"),
            ("(650) 555-0187 ext. 22", "(650) 555-0187 ext. 22"),
            (
                "support: 1-800-555-0199 ext 4417.",
                "1-800-555-0199 ext 4417",
            ),
            ("650.752.7354 x12 is my desk", "650.752.7354 x12"),
        ],
        EntityType::Phone,
    );
    only(&[("781-618-4959-Fax", "781-618-4959")], EntityType::Fax);
    none(&[
        "ISBN 978-3-16-148410-0 is cited twice.",
        "Order 0170 46829402 shipped.",
        "Zahlen Sie 1.250,00 € bis morgen.",
        "The template shows 00 00 00 00 00 as the pattern.",
        "Kapitel 0211/12 der Norm",
        "build 2024.05.17 is out",
        "订单号：202311180045",
        "Tracking number 1Z999AA10123456784 arrives 10:00-12:00.",
    ]);
}

#[test]
fn numbers_with_cues() {
    only(
        &[
            ("SSN 057866324", "057866324"),
            ("my SS# is 150182013", "150182013"),
            ("I-9: 296728031", "296728031"),
            ("SSN:434576781", "434576781"),
            ("Social Security No. 296 72 8031", "296 72 8031"),
        ],
        EntityType::UsSsn,
    );
    only(
        &[
            ("Medicare MBI 1M46-AW8-JG54", "1M46-AW8-JG54"),
            ("the card reads 5H69-VP3-VM06 on the front", "5H69-VP3-VM06"),
            ("Medicare number 2AN0FV1GM35", "2AN0FV1GM35"),
            ("Member ID: XJH829104455", "XJH829104455"),
            ("Subscriber #: 00781234-02", "00781234-02"),
            ("Mitgliedsnummer 123456789", "123456789"),
            ("numéro d'adhérent : 4481 2290 17", "4481 2290 17"),
        ],
        EntityType::HealthPlanId,
    );
    only(
        &[
            ("MRN# 358-63-50", "358-63-50"),
            ("Chart #: 358-63-50", "358-63-50"),
            ("MRN 123-45-6789 (not an SSN)", "123-45-6789"),
            ("病历号：20240118733", "20240118733"),
        ],
        EntityType::MedicalRecordNumber,
    );
    only(
        &[
            ("account # 7734-001928 was charged", "7734-001928"),
            ("Loan account 00-1234567-8 is overdue", "00-1234567-8"),
            ("Kundennummer 4471-2290-18", "4471-2290-18"),
        ],
        EntityType::AccountNumber,
    );
    only(
        &[
            ("license plate 8XKR 412, blue", "8XKR 412"),
            ("Kennzeichen: B-MW 4471", "B-MW 4471"),
            ("plaque d'immatriculation AB-123-CD", "AB-123-CD"),
            ("matrícula 1234 BCD", "1234 BCD"),
        ],
        EntityType::VehicleId,
    );
    only(
        &[
            ("driver's license: d123-4567-8901 (IL)", "d123-4567-8901"),
            ("DL: A123 4567 8901", "A123 4567 8901"),
            ("driver license s530-460-78-256-0", "s530-460-78-256-0"),
        ],
        EntityType::UsDriverLicense,
    );
    only(
        &[
            (
                "iban de14 4283 4355 7193 3471 40 please",
                "de14 4283 4355 7193 3471 40",
            ),
            ("to nl80rabo3226718068 thx", "nl80rabo3226718068"),
        ],
        EntityType::Iban,
    );
    none(&[
        "order # 7734-001928 was shipped",
        "The I-9 form is due in 3 days.",
        "SSN field left empty; ticket 123456789 tracks it.",
        "a plate of pasta for 12",
        "version 358-63-50 of the schema",
        "use utf8 and sha256 in v2 of the api",
        "de14 is not an iban, nor is nl80",
    ]);
}

#[test]
fn devices() {
    only(
        &[
            ("MAC 00:1A:2B:3C:4D:5E on port 3", "00:1A:2B:3C:4D:5E"),
            ("lease for 3c-22-fb-91-0a-7e expired", "3c-22-fb-91-0a-7e"),
            ("(MAC AC:DE:48:00:11:22)", "AC:DE:48:00:11:22"),
            ("Wi-Fi: f4:5c:89:ab:10:3e", "f4:5c:89:ab:10:3e"),
            ("bridge 001a.2b3c.4d5e is down", "001a.2b3c.4d5e"),
            ("IMEI 353918057421873", "353918057421873"),
            ("IMEI: 35 209900 176148 1", "35 209900 176148 1"),
            ("IMEI号：864452039319775", "864452039319775"),
            ("device C02XL0GHJG5H restarts", "C02XL0GHJG5H"),
            ("Seriennummer: DMPXK2Q1JF8J", "DMPXK2Q1JF8J"),
            ("设备序列号：SN20231188475", "SN20231188475"),
            ("numéro de série : F9GXK2Q1JF8J", "F9GXK2Q1JF8J"),
        ],
        EntityType::DeviceId,
    );
    none(&[
        "Start at 12:30:45 and stop at 13:00:00.",
        "ratio 16:9 or 4:3",
        "the device restarts every 10 minutes",
        "a:b:c:d:e:f is not an address",
        "12-34-56-78-90-12 is a list of pairs",
    ]);
    // IPv6 stays an IP address
    only(
        &[(
            "host fe80::1ff:fe23:4567:890a up",
            "fe80::1ff:fe23:4567:890a",
        )],
        EntityType::IpAddress,
    );
}

#[test]
fn secrets() {
    only(
        &[
            (
                "STRIPE_SECRET_KEY=sk_live_51u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLz",
                "sk_live_51u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLz",
            ),
            (
                "rotate rk_live_51hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8r today",
                "rk_live_51hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8r",
            ),
            (
                "export K=sk_test_51mxgJTeKdNnFRIBXuDL7DxtpYlSXpf",
                "sk_test_51mxgJTeKdNnFRIBXuDL7DxtpYlSXpf",
            ),
            (
                "secret whsec_4Qwb8DwkNhFdnXsiVpzz63FfkCzJr4i0 here",
                "whsec_4Qwb8DwkNhFdnXsiVpzz63FfkCzJr4i0",
            ),
            (
                "HF_TOKEN=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 python",
                "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",
            ),
            (
                "token npm_hDavJA76rNicHTp8hkqdlm7tOtHWnsCGRlrw set",
                "npm_hDavJA76rNicHTp8hkqdlm7tOtHWnsCGRlrw",
            ),
            (
                "maps: AIzag6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po- ok",
                "AIzag6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po-",
            ),
            (
                "Authorization: Bearer a6f0fb23c6f5da2cec255404e4fb440034d66086",
                "a6f0fb23c6f5da2cec255404e4fb440034d66086",
            ),
            (
                "authorization: bearer ya29.a0Af59FHz5r1pY4OjE2jBMptUsGr7CmY-uCu3ZR1",
                "ya29.a0Af59FHz5r1pY4OjE2jBMptUsGr7CmY-uCu3ZR1",
            ),
            (
                "key: hoIE33DGLpsBxswmLCR5nrkejg9TroSHjnvIxhvijw4=",
                "hoIE33DGLpsBxswmLCR5nrkejg9TroSHjnvIxhvijw4=",
            ),
            (
                "api_key=\"PzBGCsUZgXOPB8Lk6RBxU5z5gZuDM7FG\"",
                "PzBGCsUZgXOPB8Lk6RBxU5z5gZuDM7FG",
            ),
            (
                "The shared key is c2VjcmV0LWtleS1mb3ItZGVtby0yMDI0LXByb2Q= ok",
                "c2VjcmV0LWtleS1mb3ItZGVtby0yMDI0LXByb2Q=",
            ),
            (
                "client_secret: 0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3",
                "0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3",
            ),
            (
                "秘密鍵：wJalrXUtnFEMI/K7MDENG/bPxRfiCY8zQ4mVt2LkPa",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCY8zQ4mVt2LkPa",
            ),
        ],
        EntityType::ApiKey,
    );
    only(
        &[
            (
                "アクセスキーはAKIA566TFJGVQ6KBNXJBです。",
                "AKIA566TFJGVQ6KBNXJB",
            ),
            ("密钥AKIATFQXKWOVOMPZOM7W已泄露", "AKIATFQXKWOVOMPZOM7W"),
        ],
        EntityType::AwsAccessKey,
    );
    none(&[
        "key: value",
        "primary key: customer_id",
        "The Bearer of bad news arrived.",
        "token count 4096, max_tokens: 512",
        "commit a6f0fb23c6f5da2cec255404e4fb440034d66086 fixed it",
        "checksum: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "hotkey: Ctrl+Shift+K",
        "key: SomeVeryLongCamelCaseIdentifierName",
        "the key_name is user_profile_settings_v2",
        "sk_live_ is the prefix of a live key",
    ]);
}

#[test]
fn cards_with_other_numbers_and_rare_ranges() {
    only(
        &[
            ("4294 0283 8304 7808 12/27 318", "4294 0283 8304 7808"),
            ("card 5574 4724 7063 7428 11 28 thx", "5574 4724 7063 7428"),
            ("4461 6892 6725 3478 2029 442", "4461 6892 6725 3478"),
            ("Maestro 5018 1375 6266, exp 09/28", "5018 1375 6266"),
            ("Maestro-Karte: 6304 4468 3092", "6304 4468 3092"),
            ("JCB 213149509940464", "213149509940464"),
            ("old JCB 1800 6616 5598 635", "1800 6616 5598 635"),
            (
                "UnionPay 6201 8827 6344 1190 398",
                "6201 8827 6344 1190 398",
            ),
            ("Amex 3779 336512 67285 billed", "3779 336512 67285"),
        ],
        EntityType::CreditCard,
    );
    // a card among other numbers of the same text
    let t = "Order 55190, ticket 88123, invoice 2024-113: charge 4461689267253478 for 12 units.";
    assert_eq!(
        scan(t)
            .into_iter()
            .filter(|f| f.0 == EntityType::CreditCard)
            .map(|f| f.1)
            .collect::<Vec<_>>(),
        ["4461689267253478"]
    );
    none(&[
        "id 123456789012 in the table",
        "Maestro 6304 4468 3093",
        "4294 0283 8304 7809 12/27",
        "502345678901 units",
    ]);
}

#[test]
fn version_pins_and_section_numbers_are_not_ip_addresses() {
    none(&[
        "numpy==5.13.20, agent 4.19.33.196",
        "firmware 10.2.14.201 is out",
        "version 4.19.33.196",
        "v4.19.33.196",
        "Chrome/4.19.33.196 on Linux",
        "redis>=5.0.1.2",
        "Kapitel 3.2.1.4 beschreibt",
        "build 7.2.10.144 rolls out",
        "バージョン 4.19.33.196 をインストール",
        "版本号 4.19.33.196 已发布",
        // the cue read whole when the look-back's limit falls inside a character before it
        "インストールしてから再起動してください。\nバージョン 4.19.33.196 をインストール",
        "インストールしてから再起動してください。x\nバージョン 4.19.33.196 をインストール",
        "インストールしてから再起動してください。xy\nバージョン 4.19.33.196 をインストール",
    ]);
    only(
        &[
            ("server 10.24.8.113 is down", "10.24.8.113"),
            ("from 192.168.1.23 at night", "192.168.1.23"),
            ("IP: 203.0.113.7", "203.0.113.7"),
        ],
        EntityType::IpAddress,
    );
}

/// Round 2's seen documents: a dotted quad in a list of versions, a product's barcode, an
/// IMEI named after it, a date with dots and spaces, a phone of mixed separators after a cue.
#[test]
fn versions_in_lists_barcodes_and_named_imeis() {
    none(&[
        "Upgrade path: 3.4.2.1, then 3.5.0.0, then 4.0.0.12.",
        "Python 3.11.6 on Linux 6.5.0.27, glibc 2.35",
        "tested with 2.1.4 and 10.24.8.113 later",
        "商品コード 4901234567894 の在庫は 120 個です。",
        "EAN 4006381333931 on the box",
        "Artikel 4006381333931, Menge 3",
        // a date of one-digit parts without a cue is no one's
        "Version vom 4. 6. 1975 gilt",
    ]);
    only(
        &[
            // a date in a list is not a version
            ("on 12.05.23 the host 10.24.8.113 failed", "10.24.8.113"),
        ],
        EntityType::IpAddress,
    );
    // a host's address is no version: both of a list of hosts are found
    assert_eq!(
        scan("hosts 10.0.0.12 and 10.0.0.13"),
        [
            (EntityType::IpAddress, "10.0.0.12"),
            (EntityType::IpAddress, "10.0.0.13")
        ]
    );
    only(
        &[
            ("Sensor 864452039319775 (IMEI) stopped", "864452039319775"),
            ("gateway 864452039319775 IMEI", "864452039319775"),
        ],
        EntityType::DeviceId,
    );
    only(
        &[
            ("datum narození: 4. 6. 1975", "4. 6. 1975"),
            ("Geburtsdatum: 14. 2. 1991", "14. 2. 1991"),
        ],
        EntityType::DateOfBirth,
    );
    only(
        &[
            ("联系电话：021-6278 9900", "021-6278 9900"),
            ("Tel. 030-1234 5678", "030-1234 5678"),
        ],
        EntityType::Phone,
    );
    // a 13-digit card is still a card after its cue, and a 16-digit one anywhere
    only(
        &[("card number 4222222222222", "4222222222222")],
        EntityType::CreditCard,
    );
}

/// The numbers of things and of companies are no one's: articles, models, batches, shipments,
/// business registers; a network's address is no host's. Words that also precede values
/// (`request from`, `page me at`) are no such cue.
#[test]
fn numbers_of_things_and_networks() {
    none(&[
        "Artikel 0612 345 678 ist ausverkauft",
        "model 0612-345-678 replaces the old one",
        "batch 05 53 18 69 64 passed QA",
        "SIRET 0123 456 789 00012",
        "USt-IdNr 0612345678",
        "型番 0612-345-678 は廃番です",
        "the subnet 10.1.2.0 and broadcast 10.1.2.255",
        "upgrade to 4.2.0.0 first",
    ]);
    only(&[("Tel. 0612 345 678", "0612 345 678")], EntityType::Phone);
}

/// A context word glued to punctuation or to a finding is read from after it
/// (`-H"Authorization:`), the same in the whole text and in a stream's rescan.
#[test]
fn context_after_punctuation() {
    let token = "eyJDcKEQAksMkdtANBM_1fWz9Fm5sDmR.eyJz8pmPFTvgsbMo5MaXocJZpUVXPWyuG3";
    let t = format!("curl -H\"Authorization: Bearer {token}\" https://api.example.com");
    assert!(scan(&t).contains(&(EntityType::ApiKey, token)), "{t}");
}

/// Long runs of the shapes the new rules look at stay linear and sound.
#[test]
fn hostile_repetitions_of_value_shapes_stay_sound() {
    for t in [
        "ab:".repeat(20_000),
        "0a-".repeat(20_000),
        "key: ".repeat(10_000),
        "Bearer ".repeat(10_000),
        "sk_live_".repeat(5_000),
        "1985年".repeat(10_000),
        "电话".repeat(10_000) + "1",
        "x".repeat(3) + &"Ab1+/".repeat(20_000),
        "4111 ".repeat(20_000),
        "0 ".repeat(30_000),
    ] {
        assert_sound(&t);
    }
}

#[test]
#[ignore = "exploration: prints every finding outside names and addresses in files named by KT_PROBE"]
fn probe_values() {
    let Ok(files) = std::env::var("KT_PROBE") else {
        return;
    };
    let d = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    for f in files.split(':') {
        let t = std::fs::read_to_string(f).unwrap_or_default();
        let mut v = Vec::new();
        d.scan(&t, &mut v);
        resolve_overlaps(&mut v);
        for x in v {
            if !matches!(x.entity, EntityType::Person | EntityType::Address) {
                let mut from = x.start.saturating_sub(30);
                while !t.is_char_boundary(from) {
                    from -= 1;
                }
                println!(
                    "{f}\t{}\t{:?}\t{:?}",
                    x.entity,
                    &t[x.start..x.end],
                    &t[from..x.start]
                );
            }
        }
    }
}
