//! Cases for the built-in scanner, one test per class of value (issue 20: e-mail addresses,
//! names after cues, false alarms, addresses), in several languages each.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::builtin::BuiltinDetector;
use super::{resolve_overlaps, Detector, EntityType};

/// Every raw finding in `t` (before overlaps are resolved) is a non-empty span inside it, on
/// character boundaries.
pub(super) fn assert_sound(t: &str) {
    let d = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    let mut v = Vec::new();
    d.scan(t, &mut v);
    for f in &v {
        assert!(f.start < f.end && f.end <= t.len());
        assert!(t.is_char_boundary(f.start) && t.is_char_boundary(f.end));
    }
}

/// Every finding of `text`, overlaps resolved, with the text it covers.
pub(super) fn scan(text: &str) -> Vec<(EntityType, &str)> {
    let d = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    let mut v = Vec::new();
    d.scan(text, &mut v);
    resolve_overlaps(&mut v);
    v.into_iter()
        .map(|f| (f.entity, &text[f.start..f.end]))
        .collect()
}

pub(super) fn of(text: &str, e: EntityType) -> Vec<&str> {
    scan(text)
        .into_iter()
        .filter(|f| f.0 == e)
        .map(|f| f.1)
        .collect()
}

#[test]
fn email_with_internationalized_local_part_and_domain() {
    let t = "Rückfragen an jürgen.müller@example.de bitte.";
    assert_eq!(of(t, EntityType::Email), ["jürgen.müller@example.de"]);
    assert_eq!(
        of("Schreiben Sie an info@müller.de oder", EntityType::Email),
        ["info@müller.de"]
    );
    assert_eq!(
        of("correo: josé.pérez@correo.es.", EntityType::Email),
        ["josé.pérez@correo.es"]
    );
    assert_eq!(
        of("пишите на иван@почта.рф сегодня", EntityType::Email),
        ["иван@почта.рф"]
    );
    assert_eq!(
        of("punycode mail@xn--mller-kva.de works", EntityType::Email),
        ["mail@xn--mller-kva.de"]
    );
    // a CJK cue glued to the address is not part of its local part
    assert_eq!(
        of("邮箱是xiaoming.wang@163.com。", EntityType::Email),
        ["xiaoming.wang@163.com"]
    );
}

#[test]
fn number_ends_before_an_address_whose_local_part_starts_with_digits() {
    // the address is a word of its own: the number before it is read the same whether the
    // address is still there or already a marker (redaction stays idempotent)
    for (t, addr) in [
        (
            "can you text me at +1 874 539 254ppa81@outlook.com",
            "254ppa81@outlook.com",
        ),
        ("text me at +1 874 539 254@outlook.com", "254@outlook.com"),
        ("Telefon 030 1234 5678 99mueller@web.de", "99mueller@web.de"),
    ] {
        assert_eq!(of(t, EntityType::Email), [addr], "{t}");
        let marker = t.replace(addr, "[EMAIL]");
        assert_eq!(
            of(t, EntityType::Phone),
            of(&marker, EntityType::Phone),
            "{t}"
        );
    }
}

#[test]
fn email_with_capitalized_local_part_is_one_span() {
    for (t, want) in [
        (
            "Forward it to Anna.Kowalska@kancelaria.pl today.",
            "Anna.Kowalska@kancelaria.pl",
        ),
        ("Contact: John.Smith@example.com", "John.Smith@example.com"),
        (
            "Mail from Ólafur.Jónsson@simnet.is bounced",
            "Ólafur.Jónsson@simnet.is",
        ),
        ("Dear Maria_Lopez@empresa.es,", "Maria_Lopez@empresa.es"),
    ] {
        assert_eq!(scan(t), [(EntityType::Email, want)], "{t}");
    }
}

#[test]
fn names_after_cues_in_several_languages() {
    for (t, want) in [
        (
            "My name is Václav Slepička and I need help.",
            "Václav Slepička",
        ),
        (
            "Name: Sigtryggur Bernharðsson\nEmail: none",
            "Sigtryggur Bernharðsson",
        ),
        ("Hi, my name is Sofia and I can't log in.", "Sofia"),
        ("her maiden name is Kristensen and she", "Kristensen"),
        ("Je m'appelle Élodie Marchand, j'habite", "Élodie Marchand"),
        ("Je m’appelle Anaïs.", "Anaïs"),
        (
            "Me llamo Alejandro Ruiz Ortega y vivo",
            "Alejandro Ruiz Ortega",
        ),
        ("Mein Name ist Jürgen Weiß und ich", "Jürgen Weiß"),
        ("Ich heiße Lukas und brauche Hilfe.", "Lukas"),
        ("Mijn naam is Daan de Vries, bel me", "Daan de Vries"),
        (
            "Dobrý den, jmenuji se Jiří Dvořák a potřebuji",
            "Jiří Dvořák",
        ),
        ("Olá, meu nome é João Pereira e", "João Pereira"),
        ("Ciao, sono Giulia Bianchi, il mio", "Giulia Bianchi"),
        ("Ég heiti Guðrún Sigurðardóttir.", "Guðrún Sigurðardóttir"),
        ("Nom : Dupont", "Dupont"),
        (
            "# Author: Henrik Lindqvist <h@firma.se>",
            "Henrik Lindqvist",
        ),
        ("-- Reviewer: Tomasz Zieliński", "Tomasz Zieliński"),
        ("De: Inês Carvalho\nAssunto: proposta", "Inês Carvalho"),
    ] {
        let names = of(t, EntityType::Person);
        assert_eq!(names, [want], "{t}");
    }
}

#[test]
fn cyrillic_names_after_cues() {
    for (t, want) in [
        ("Меня зовут Иван Петров, мне нужна помощь.", "Иван Петров"),
        ("Имя: Ольга Смирнова\nТелефон: нет", "Ольга Смирнова"),
        ("Уважаемый Алексей, спасибо за письмо.", "Алексей"),
        ("С уважением,\nДмитрий Кузнецов", "Дмитрий Кузнецов"),
        ("Мене звати Тарас Шевченко.", "Тарас Шевченко"),
    ] {
        assert_eq!(of(t, EntityType::Person), [want], "{t}");
    }
    for t in [
        "Москва — столица России.",
        "Привет, Москва! Здравствуйте, коллеги.",
        "Спасибо за отчёт. Я прочитаю его завтра.",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
}

#[test]
fn lowercasing_covers_latin1_and_cyrillic_capitals() {
    let mut buf = [0u8; 32];
    assert_eq!(
        super::scan::lower_for_tests("ÉG HEITI", &mut buf),
        "ég heiti"
    );
    assert_eq!(
        super::scan::lower_for_tests("МЕНЯ Зовут Ёж", &mut buf),
        "меня зовут ёж"
    );
}

#[test]
fn last_first_after_a_form_field() {
    assert_eq!(
        of(
            "Patient: Nowak, Katarzyna, DOB 03/14/1962",
            EntityType::Person
        ),
        ["Nowak, Katarzyna"]
    );
    assert_eq!(
        of("Name: Smith, John\nPhone: none", EntityType::Person),
        ["Smith, John"]
    );
    // a letter's greeting is not a `Last, First` field
    assert_eq!(
        of("Dear Anna, We are glad to", EntityType::Person),
        ["Anna"]
    );
    // a column list is not a name
    assert!(of("Name, Email, Phone", EntityType::Person).is_empty());
}

#[test]
fn signature_blocks() {
    for (t, want) in [
        (
            "please check.\n\nBest regards,\nMaria Gonzalez\nAccounts Payable",
            "Maria Gonzalez",
        ),
        (
            "Thanks,\nPriya Natarajan\nSenior Analyst",
            "Priya Natarajan",
        ),
        ("Sincerely yours,\n\nAdaeze Chukwu", "Adaeze Chukwu"),
        ("Mit freundlichen Grüßen\nKatrin Vogel", "Katrin Vogel"),
        ("Saludos cordiales,\nLucía Fernández", "Lucía Fernández"),
        ("Cordialement,\r\nThéo Rousseau", "Théo Rousseau"),
        ("Cheers,\nTamsin", "Tamsin"),
    ] {
        assert_eq!(of(t, EntityType::Person), [want], "{t:?}");
    }
    // a closing word inside a sentence does not reach the next line
    assert!(of("We send our best\nRegional Office", EntityType::Person).is_empty());
}

#[test]
fn cjk_names_after_cues() {
    for (t, want) in [
        ("请帮我写一封邮件。我叫王小明，邮箱是", "王小明"),
        ("我的名字是陈美玲，请帮我预约", "陈美玲"),
        ("姓名：李建国\n职位：工程师", "李建国"),
        ("联系人：赵磊", "赵磊"),
        ("名前: 山田太郎\nメール", "山田太郎"),
        ("私の名前は佐藤花子です。", "佐藤花子"),
        ("氏名：高橋健一　住所", "高橋健一"),
        ("我叫王小明今年三十岁", "王小明"),
        ("我是李娜。", "李娜"),
    ] {
        assert_eq!(of(t, EntityType::Person), [want], "{t}");
    }
    // Korean: a surname and two syllables, cut from what is written onto them
    for (t, want) in [
        ("안녕하세요, 제 이름은 김민준입니다.", "김민준"),
        ("이름: 박서연\n전화: 없음", "박서연"),
        ("저는 이지은이에요.", "이지은"),
        ("성함: 최수아", "최수아"),
    ] {
        assert_eq!(of(t, EntityType::Person), [want], "{t}");
    }
    assert!(of("저는 학생입니다.", EntityType::Person).is_empty());
    assert!(of("이름을 입력하세요.", EntityType::Person).is_empty());
    // a weak cue needs a surname: "I am a student", "I am in Shanghai"
    assert!(of("我是学生。", EntityType::Person).is_empty());
    assert!(of("私は東京に住んでいます。", EntityType::Person).is_empty());
    assert!(of("我们下周在上海开会，请准备一份议程。", EntityType::Person).is_empty());
}

#[test]
fn sentence_openers_are_not_names() {
    for t in [
        "Merci pour votre retour. La réunion est déplacée à jeudi.",
        "Mon avis : la nouvelle version est plus rapide.",
        "Bonjour,\nMerci beaucoup. La présentation était claire.",
        "Hallo, Die Zahlen sind fertig.",
        "Hola, La reunión es mañana.",
        "Dear Team, This is the plan.",
        "Hi, I am Not sure about this.",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
    // a label that ends a sentence introduces nothing; a possessive is not part of a name
    assert!(of("from a patent holder.  Therefore the", EntityType::Person).is_empty());
    assert!(of("the Patient. Whatever comes", EntityType::Person).is_empty());
    assert_eq!(
        of("Dear Mr. Hinnant's team", EntityType::Person),
        ["Hinnant"]
    );
    // a greeting is a cue for the name after it, never a name itself
    assert_eq!(
        of("Merci Garcia pour votre aide.", EntityType::Person),
        ["Garcia"]
    );
    // after a title a short word is still a name
    assert_eq!(of("Dr. Le will see you", EntityType::Person), ["Le"]);
}

#[test]
fn sql_keywords_are_not_names_or_cues() {
    for t in [
        "SELECT Name, Email FROM Customers WHERE Country = 'Germany' ORDER BY Name;",
        "UPDATE Orders SET Status = 'Shipped' WHERE OrderDate < '2024-01-01';",
        "SELECT c.Name FROM Customers c JOIN Orders o ON o.Id = c.Id",
        "DELETE FROM Employees WHERE Id = 3",
        "INSERT INTO Users (Name) VALUES ('x')",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
}

#[test]
fn countries_and_cities_are_not_names() {
    for t in [
        "Messages from Germany and France arrive late; from Spain they are on time.",
        "Greetings from Argentina!",
        "Hello Brazil, welcome to the launch.",
        "Grüße aus Deutschland, hallo Österreich!",
        "I am Canadian and I live in Toronto.",
        "Saludos desde México, hola España.",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
}

#[test]
fn every_cjk_cue_and_region_ends_with_a_checked_character() {
    use super::words::{cjk_cue_end, cjk_region_end, CJK_NAME_CUES, CJK_REGIONS};
    for (cue, _) in CJK_NAME_CUES {
        assert!(cjk_cue_end(cue.chars().next_back().unwrap()), "{cue}");
    }
    for region in CJK_REGIONS {
        assert!(
            cjk_region_end(region.chars().next_back().unwrap()),
            "{region}"
        );
    }
}

#[test]
fn whole_addresses_are_one_span() {
    for (t, want) in [
        (
            "Ship it to 221 Baker Street, Apt 2, Springfield, IL 62704 please.",
            "221 Baker Street, Apt 2, Springfield, IL 62704",
        ),
        (
            "address 4410 Elm Avenue, Suite 300, Austin, TX 78701-1234.",
            "4410 Elm Avenue, Suite 300, Austin, TX 78701-1234",
        ),
        (
            "I live at 17969 Broadway, New York, NY 10019.",
            "17969 Broadway, New York, NY 10019",
        ),
        (
            "HQ: 500 Boylston St, Boston, MA 02116",
            "500 Boylston St, Boston, MA 02116",
        ),
        (
            "lives at 88 Queen Street, Toronto, ON M5H 2N2 now",
            "88 Queen Street, Toronto, ON M5H 2N2",
        ),
        (
            "Anschrift Hauptstraße 5, 10115 Berlin gespeichert",
            "Hauptstraße 5, 10115 Berlin",
        ),
        (
            "neu: Goethestraße 7a, 60313 Frankfurt am Main.",
            "Goethestraße 7a, 60313 Frankfurt am Main",
        ),
        (
            "j'habite au 12 rue de la Paix, 75002 Paris.",
            "12 rue de la Paix, 75002 Paris",
        ),
        (
            "vivo en Calle Mayor 3, 28013 Madrid.",
            "Calle Mayor 3, 28013 Madrid",
        ),
        (
            "il mio indirizzo è Via Roma 21, 00184 Roma.",
            "Via Roma 21, 00184 Roma",
        ),
        (
            "Herrn Müller\nLindenallee 14\n50968 Köln\n",
            "Lindenallee 14\n50968 Köln",
        ),
        (
            "write to 51 Franklin Street, Fifth Floor, Boston, MA  02110-1301  USA",
            "51 Franklin Street, Fifth Floor, Boston, MA  02110-1301",
        ),
        (
            "51 Franklin St, 2nd Floor, Boston MA 02110 USA",
            "51 Franklin St, 2nd Floor, Boston MA 02110",
        ),
    ] {
        assert_eq!(of(t, EntityType::Address), [want], "{t}");
        assert!(of(t, EntityType::ZipCode).is_empty(), "{t}");
    }
}

#[test]
fn chinese_and_japanese_addresses() {
    for (t, want) in [
        (
            "住所：東京都港区六本木6-10-1　電話",
            "東京都港区六本木6-10-1",
        ),
        (
            "大阪府大阪市北区梅田3丁目1番1号に来てください",
            "大阪府大阪市北区梅田3丁目1番1号",
        ),
        ("寄到北京市朝阳区建国路88号，谢谢", "北京市朝阳区建国路88号"),
        (
            "地址：上海市浦东新区世纪大道100号",
            "上海市浦东新区世纪大道100号",
        ),
        (
            "广东省深圳市南山区科技园路18号3栋",
            "广东省深圳市南山区科技园路18号3栋",
        ),
    ] {
        assert_eq!(of(t, EntityType::Address), [want], "{t}");
    }
    for t in [
        "北京市人口2000万",
        "北京市的人口是2000万。",
        "東京都は日本の首都です。",
        "我们下周在上海市开会。",
    ] {
        assert!(of(t, EntityType::Address).is_empty(), "{t}: {:?}", scan(t));
    }
}

#[test]
fn post_office_boxes() {
    for (t, want) in [
        (
            "Mail it to PO Box 1234, Austin, TX 78701.",
            "PO Box 1234, Austin, TX 78701",
        ),
        ("Send to P.O. Box 77 please", "P.O. Box 77"),
        (
            "Postfach 1020, 80331 München",
            "Postfach 1020, 80331 München",
        ),
        ("Apartado 45, 28080 Madrid", "Apartado 45, 28080 Madrid"),
        ("Caixa Postal 9, Lisboa.", "Caixa Postal 9, Lisboa"),
    ] {
        assert_eq!(of(t, EntityType::Address), [want], "{t}");
    }
    // a box that is not a post-office box
    assert!(of("Put it in box 3 of the shelf", EntityType::Address).is_empty());
    assert!(of("Step 2: open Box 3 first", EntityType::Address).is_empty());
}

#[test]
fn address_tails_need_their_shape() {
    // a street with a suffix keeps its own span when no city and postcode follow
    assert_eq!(
        of(
            "she lives at 61 Willow Circle, next to the park",
            EntityType::Address
        ),
        ["61 Willow Circle"]
    );
    // no suffix and no state with a ZIP code: not an address
    for t in [
        "In 2019 Apple, Google and Microsoft shipped.",
        "Chapter 12 Broadway, New York and the Jazz Age",
        "Room 42 Atlas, Springfield office",
    ] {
        assert!(of(t, EntityType::Address).is_empty(), "{t}: {:?}", scan(t));
    }
    // a ZIP code after a state stands alone
    assert_eq!(of("Springfield, IL 62704", EntityType::ZipCode), ["62704"]);
}

#[test]
fn greetings_without_a_name_are_not_names() {
    for t in [
        "print(\"Hello World\")",
        "Dear Hiring Manager, I am applying",
        "Dear Valued Customer, your order",
        "Sehr geehrte Damen und Herren, anbei",
        "Liebe Grüße aus Berlin",
        "Beste Grüße\nIhr Team",
        "Hi There, quick question",
        "Hello Everyone, welcome",
        "Write a Python class called Parser that uses a library named Requests.",
        "Talk to Support if the Widget fails.",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
}

#[test]
fn more_cues_and_name_shapes() {
    for (t, want) in [
        (
            "Please book a table under the name Okonkwo.",
            vec!["Okonkwo"],
        ),
        ("Student: Nguyễn Văn An, Class 10A", vec!["Nguyễn Văn An"]),
        ("Hi, I'm Kwame. I moved", vec!["Kwame"]),
        (
            "in a friendlier tone: 'Hi Sven, the build failed.'",
            vec!["Sven"],
        ),
        (
            "Bitte antworte Herrn Dr. Thomas Keller, er wartet.",
            vec!["Thomas Keller"],
        ),
        ("Dear Mr. Price,\n\nyour report", vec!["Price"]),
        ("Mi madre, Rosa Jiménez, vive en", vec!["Rosa Jiménez"]),
        (
            "Emergency contact: Halima Yusuf (sister)",
            vec!["Halima Yusuf"],
        ),
        ("我是张伟，来自北京。", vec!["张伟"]),
        ("私は田中一郎と申します。", vec!["田中一郎"]),
    ] {
        assert_eq!(of(t, EntityType::Person), want, "{t}");
    }
}

#[test]
fn more_address_forms() {
    for (t, want) in [
        (
            "The flat is at 14 Harbour View Road, Cork.",
            "14 Harbour View Road, Cork",
        ),
        (
            "I moved from 22 Rue Sainte-Catherine, Bordeaux to Lyon.",
            "22 Rue Sainte-Catherine, Bordeaux",
        ),
        (
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        ),
        (
            "27 S Park Lane, Madison, WI 53703",
            "27 S Park Lane, Madison, WI 53703",
        ),
        (
            "10 Downing Street, London SW1A 2AA",
            "10 Downing Street, London SW1A 2AA",
        ),
        (
            "Ik woon op Keizersgracht 123, 1015 CJ Amsterdam.",
            "Keizersgracht 123, 1015 CJ Amsterdam",
        ),
        (
            "Adres: ul. Marszałkowska 10/12, 00-590 Warszawa",
            "ul. Marszałkowska 10/12, 00-590 Warszawa",
        ),
        (
            "Vesterbrogade 12, 1620 København V",
            "Vesterbrogade 12, 1620 København",
        ),
        (
            "住所：台北市信義區信義路五段7號",
            "台北市信義區信義路五段7號",
        ),
        (
            "Dirección: Paseo Serrano 92, Madrid.",
            "Paseo Serrano 92, Madrid",
        ),
    ] {
        assert_eq!(of(t, EntityType::Address), [want], "{t}");
    }
    // a given name after the street starts a new clause, not a city
    assert_eq!(
        of(
            "at 61 Willow Circle, Thomas said he would come",
            EntityType::Address
        ),
        ["61 Willow Circle"]
    );
}

#[test]
fn names_without_a_cue_from_the_dictionaries() {
    for (t, want) in [
        (
            "Can you format this label: Jane Whitfield, 3 Elm Grove",
            "Jane Whitfield",
        ),
        (
            "forward it to Piotr Wiśniewski tomorrow",
            "Piotr Wiśniewski",
        ),
        ("the report of Chinedu Okafor was late", "Chinedu Okafor"),
        ("ask Sipho Dlamini about it", "Sipho Dlamini"),
    ] {
        assert_eq!(of(t, EntityType::Person), [want], "{t}");
    }
    // a saint's or a place's prefix makes a given name a place
    for t in [
        "The San Francisco Chronicle reported it.",
        "flights from São Paulo Guarulhos",
        "St. Louis Cardinals won",
        "Visit San Diego Zoo",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
}

#[test]
fn code_identifiers_are_not_names() {
    for t in [
        "let owner = Principal::new(\"u1\");",
        "    pub name: String,\n    pub assignee: Option<String>,",
        "use postgres::{Client, Config};",
        "    client = TestClient(app)",
        "pub const ALL: [Role; 3] = [Role::Member, Role::Owner];",
        ") -> Result<Member, AdminError> {",
        "    pub provider: ProviderKind,",
        "    text = \"客户邮箱 a@b.com\"",
    ] {
        assert!(of(t, EntityType::Person).is_empty(), "{t}: {:?}", scan(t));
    }
    // names with a capital after a short prefix or a hyphen are still names
    for (t, want) in [
        ("Kind regards,\nFiona MacLeod", "Fiona MacLeod"),
        ("Patient: Anna Smith-Jones", "Anna Smith-Jones"),
        ("Dear Mr. O'Brien,", "O'Brien"),
        ("Name: Jean-Pierre Lefèvre", "Jean-Pierre Lefèvre"),
        ("患者王伟，男，45岁", "王伟"),
    ] {
        assert_eq!(of(t, EntityType::Person), [want], "{t}");
    }
}

#[test]
#[ignore = "exploration: prints what the scanner finds in files named by KT_PROBE"]
fn probe() {
    let Ok(files) = std::env::var("KT_PROBE") else {
        return;
    };
    for f in files.split(':') {
        let t = std::fs::read_to_string(f).unwrap_or_default();
        let d = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
        let mut v = Vec::new();
        d.scan(&t, &mut v);
        resolve_overlaps(&mut v);
        for x in v {
            if matches!(x.entity, EntityType::Person | EntityType::Address) {
                let mut from = x.start.saturating_sub(40);
                while !t.is_char_boundary(from) {
                    from -= 1;
                }
                let (before, value) = (&t[from..x.start], &t[x.start..x.end]);
                println!("{f}\t{}\t{value:?}\t{before:?}", x.entity);
            }
        }
    }
}

#[test]
fn hostile_repetitions_of_the_new_shapes_stay_sound() {
    for t in [
        "市".repeat(20_000),
        "我叫是".repeat(5_000),
        "Name: ".repeat(5_000),
        "Best regards,\n".repeat(3_000),
        "Anna.".repeat(10_000) + "@example.com",
        "12 Main Street, ".repeat(3_000),
        "北京市朝阳区".repeat(3_000) + "1号",
        "jürgen.".repeat(10_000) + "@müller.de",
        "Dear ".repeat(10_000),
    ] {
        assert_sound(&t);
    }
}

/// A key block whose body and end marker stand on the header's line within 60 bytes ends at
/// its own end marker: the body was read from 60 bytes past the header, past that marker, and
/// ran on into the text after it or to a later block's end marker (found by `scan_redact`:
/// the stream, which saw the first end marker before the header's 60 bytes, read two blocks).
#[test]
fn a_short_key_block_on_one_line_ends_at_its_end_marker() {
    let t = "key -----BEGIN PRIVATE KEY-----MIIEvQIBADAN-----END PRIVATE KEY----- then the note goes on";
    assert_eq!(
        of(t, EntityType::PrivateKey),
        ["-----BEGIN PRIVATE KEY-----MIIEvQIBADAN-----END PRIVATE KEY-----"]
    );
    let t = format!(
        "-----BEGIN PRIVATE KEY-----MIIEvQIBADAN-----END PRIVATr, the rest of the note {} QEFAASCB-----END PRIVATE KEY----- tail",
        "goes on and on ".repeat(20)
    );
    let keys = of(&t, EntityType::PrivateKey);
    assert_eq!(keys, ["-----BEGIN PRIVATE KEY-----MIIEvQIBADAN-----END "]);
}
