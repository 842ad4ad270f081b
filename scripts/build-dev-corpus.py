#!/usr/bin/env python3
"""Builds conformance/detection/dev.jsonl, the development corpus of issue 20.

Unlike corpus.jsonl (generated from templates and name lists), every document here is written
by hand, one by one: prompts a person would send to an assistant, forms, signatures, code
headers and mail snippets in English, German, French, Spanish, Italian, Portuguese, Dutch,
Czech, Icelandic, Chinese and Japanese. Values are marked inline as [[TYPE|value]]; this
script strips the marks and records byte offsets, in the line format of corpus.jsonl plus a
"split" field: "tuned" documents may be looked at while tuning the detector, "heldout"
documents are only scored (see docs/detection.md).

Annotation: a PERSON span is the name without a title (`Dr. [[PERSON|Anna Berg]]`); an
ADDRESS span is the whole address, street to postcode and city (no country); `Last, First`
is one PERSON span.
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"\[\[([A-Z_]+)\|(.*?)\]\]", re.S)

# (split, kind, text)
DOCS = [
    # ---------------- tuned ----------------
    ("tuned", "prompt", "Hi, my name is [[PERSON|Sofia]] and I can't log in. My account email is [[EMAIL|sofia.reyes@mailbox.org]]."),
    ("tuned", "prompt", "Can you rewrite this cover letter? My name is [[PERSON|Václav Slepička]] and I live at [[ADDRESS|17969 Broadway, New York, NY 10019]]."),
    ("tuned", "prompt", "Bitte fasse diese E-Mail zusammen: Sehr geehrter Herr [[PERSON|Müller]], wir haben Ihre neue Anschrift [[ADDRESS|Hauptstraße 5, 10115 Berlin]] gespeichert. Rückfragen an [[EMAIL|jürgen.müller@example.de]]."),
    ("tuned", "prompt", "Merci de traduire : Je m'appelle [[PERSON|Élodie Marchand]], j'habite au [[ADDRESS|12 rue de la Paix, 75002 Paris]]."),
    ("tuned", "prompt", "Corrige la ortografía: Me llamo [[PERSON|Alejandro Ruiz Ortega]] y vivo en [[ADDRESS|Calle Mayor 3, 28013 Madrid]]. Mi correo es [[EMAIL|alejandro.ruiz@correo.es]]."),
    ("tuned", "form", "Name: [[PERSON|Sigtryggur Bernharðsson]]\nEmail: [[EMAIL|sigtryggur@hotmail.is]]\nPhone: [[PHONE|+354 581 2345]]"),
    ("tuned", "mail", "Draft a polite reply to this:\n\nThe invoice is still open, please check.\n\nBest regards,\n[[PERSON|Maria Gonzalez]]\nAccounts Payable"),
    ("tuned", "code", "# Author: [[PERSON|Henrik Lindqvist]] <[[EMAIL|henrik.lindqvist@firma.se]]>\n# License: MIT\nimport os\n"),
    ("tuned", "prompt", "For the genealogy form: her maiden name is [[PERSON|Kristensen]] and she was born in Odense."),
    ("tuned", "clinical", "Patient: [[PERSON|Nowak, Katarzyna]], DOB [[DATE_OF_BIRTH|03/14/1962]], MRN [[MEDICAL_RECORD_NUMBER|00482913]]."),
    ("tuned", "prompt", "请帮我写一封邮件。我叫[[PERSON|王小明]]，邮箱是[[EMAIL|xiaoming.wang@163.com]]。"),
    ("tuned", "form", "名前: [[PERSON|山田太郎]]\nメール: [[EMAIL|t.yamada@example.co.jp]]"),
    ("tuned", "prompt", "Forward the contract to [[EMAIL|Anna.Kowalska@kancelaria.pl]] before Friday."),
    ("tuned", "prompt", "Schreiben Sie an [[EMAIL|info@müller.de]] oder rufen Sie uns an."),
    ("tuned", "prompt", "Ship the replacement to [[ADDRESS|221 Baker Street, Apt 2, Springfield, IL 62704]] please."),
    ("tuned", "prompt", "Update my profile: [[PERSON|Olusegun Adeyemi]], phone [[PHONE|(415) 555-0198]], address [[ADDRESS|4410 Elm Avenue, Suite 300, Austin, TX 78701]]."),
    ("tuned", "prompt", "Ciao, sono [[PERSON|Giulia Bianchi]], il mio indirizzo è [[ADDRESS|Via Roma 21, 00184 Roma]]."),
    ("tuned", "prompt", "Olá, meu nome é [[PERSON|João Pereira]] e meu e-mail é [[EMAIL|joao.pereira@exemplo.com.br]]."),
    ("tuned", "prompt", "Mijn naam is [[PERSON|Daan de Vries]], bel me op [[PHONE|+31 6 12345678]]."),
    ("tuned", "prompt", "Mein Name ist [[PERSON|Jürgen Weiß]] und ich wohne in der [[ADDRESS|Lindenallee 14, 50968 Köln]]."),
    ("tuned", "prompt", "Dobrý den, jmenuji se [[PERSON|Jiří Dvořák]] a potřebuji pomoc s fakturou."),
    ("tuned", "mail", "Thanks,\n[[PERSON|Priya Natarajan]]\nSenior Analyst"),
    ("tuned", "ticket", "Can you summarize this ticket? Customer [[PERSON|Ngozi Okafor]] says her card [[CREDIT_CARD|4111 1111 1111 1111]] was charged twice."),
    ("tuned", "mail", "Bonjour [[PERSON|Camille]],\n\nvoici le compte rendu de la réunion."),
    ("tuned", "mail", "Saludos cordiales,\n[[PERSON|Lucía Fernández]]"),
    ("tuned", "mail", "Mit freundlichen Grüßen\n[[PERSON|Katrin Vogel]]"),
    ("tuned", "prompt", "私の名前は[[PERSON|佐藤花子]]です。履歴書を書いてください。"),
    ("tuned", "form", "姓名：[[PERSON|李建国]]\n职位：工程师"),
    ("tuned", "code", "Reviewer: [[PERSON|Tomasz Zieliński]]\nStatus: approved"),
    ("tuned", "prompt", "I am writing on behalf of my father, [[PERSON|Rajesh Kumar]], who lives at [[ADDRESS|88 Queen Street, Toronto, ON M5H 2N2]]."),
    ("tuned", "prompt", "Send it to [[EMAIL|Jose.Garcia@empresa.mx]] and cc [[EMAIL|ana@empresa.mx]]."),
    ("tuned", "prompt", "Wir ziehen um: ab Juli lautet die Adresse [[ADDRESS|Goethestraße 7a, 60313 Frankfurt am Main]]."),
    ("tuned", "prompt", "Invoice address: [[ADDRESS|350 Fifth Avenue, Floor 21, New York, NY 10118]]"),
    ("tuned", "prompt", "My name's [[PERSON|Aoife]] and I'd like to cancel my subscription."),
    ("tuned", "prompt", "Me llamo [[PERSON|Carmen]]. ¿Puedes ayudarme con mi currículum?"),
    ("tuned", "prompt", "Ich heiße [[PERSON|Lukas]] und brauche Hilfe bei meiner Steuererklärung."),
    # clean, tuned
    ("tuned", "pii_free", "SELECT Name, Email FROM Customers WHERE Country = 'Germany' ORDER BY Name;"),
    ("tuned", "pii_free", "Merci pour votre retour. La réunion est déplacée à jeudi."),
    ("tuned", "pii_free", "Mon avis : la nouvelle version est plus rapide. La documentation doit suivre."),
    ("tuned", "pii_free", "We shipped to France, Germany, Spain and Italy last quarter; Brazil and Japan are next."),
    ("tuned", "pii_free", "Write a haiku about autumn in Kyoto."),
    ("tuned", "pii_free", "Refactor this: def get_user(id): return db.query(User).filter(User.id == id).first()"),
    ("tuned", "pii_free", "Der Bericht für Deutschland und Österreich ist fertig. Die Zahlen für die Schweiz folgen."),
    ("tuned", "pii_free", "UPDATE Orders SET Status = 'Shipped' WHERE OrderDate < '2024-01-01';"),
    ("tuned", "pii_free", "Explain the difference between TCP and UDP for a beginner."),
    ("tuned", "pii_free", "Gracias por la información. El informe de ventas de México está listo."),
    ("tuned", "pii_free", "Translate to German: The meeting with the Netherlands team moved to Tuesday."),
    ("tuned", "pii_free", "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt"),
    ("tuned", "pii_free", "Danke für die schnelle Antwort! Viele Grüße aus dem Team."),
    ("tuned", "pii_free", "Messages from Germany and France arrive late; from Spain they are on time."),
    # tuned, second batch (written after the first round of work, before tuning on it)
    ("tuned", "prompt", "Rewrite this message in a friendlier tone: 'Hi [[PERSON|Sven]], the deployment failed again. Please call me.'"),
    ("tuned", "prompt", "Translate into English: Sehr geehrte Frau Dr. [[PERSON|Hoffmann]], vielen Dank für Ihre Geduld."),
    ("tuned", "prompt", "Summarize these meeting notes. Attendees: [[PERSON|Priya Raman]], [[PERSON|Tom Okafor]], [[PERSON|Lucía Gómez]]. Action items: finish the budget."),
    ("tuned", "prompt", "Draft a birthday message for my colleague [[PERSON|Anneliese Brandt]]."),
    ("tuned", "prompt", "My landlord, Mr. [[PERSON|Okonkwo]], hasn't returned my deposit. The flat is at [[ADDRESS|14 Harbour View Road, Cork]]."),
    ("tuned", "prompt", "Can you format this as a shipping label: [[PERSON|Jane Whitfield]], [[ADDRESS|3 Elm Grove, Apt 12, Portland, OR 97205]]"),
    ("tuned", "prompt", "¿Puedes ayudarme? Mi madre, [[PERSON|Rosa Jiménez]], vive en [[ADDRESS|Calle de Alcalá 45, 28014 Madrid]]."),
    ("tuned", "ticket", "Le dossier de Mme [[PERSON|Claire Fontaine]] est incomplet."),
    ("tuned", "prompt", "Bitte antworte Herrn Dr. [[PERSON|Thomas Keller]], er wartet seit Montag."),
    ("tuned", "ticket", "Ticket #4471: user [[EMAIL|ana.souza@empresa.com.br]] cannot reset her password."),
    ("tuned", "mail", "CC: [[PERSON|Mei Lin]], [[PERSON|Rahul Verma]]\nSubject: roadmap"),
    ("tuned", "mail", "From: [[PERSON|Jürgen Hartmann]] <[[EMAIL|j.hartmann@stadtwerke-ulm.de]]>\nTo: [[EMAIL|support@example.com]]\nSubject: Zählerstand"),
    ("tuned", "prompt", "私は[[PERSON|田中一郎]]と申します。よろしくお願いします。"),
    ("tuned", "prompt", "我是[[PERSON|张伟]]，来自北京。"),
    ("tuned", "prompt", "Please book a table for two under the name [[PERSON|Okonkwo]]."),
    ("tuned", "form", "Student: [[PERSON|Nguyễn Văn An]], Class 10A"),
    ("tuned", "mail", "Dear Ms. [[PERSON|Nakamura-Schmidt]],\n\nthank you for your order."),
    ("tuned", "form", "Addresses to geocode:\n[[ADDRESS|1600 Pennsylvania Avenue NW, Washington, DC 20500]]\n[[ADDRESS|10 Downing Street, London SW1A 2AA]]"),
    ("tuned", "prompt", "Hi, I'm [[PERSON|Kwame]]. I moved from [[ADDRESS|22 Rue Sainte-Catherine, Bordeaux]] to Lyon."),
    ("tuned", "prompt", "Kontakt: Frau [[PERSON|Ayşe Yılmaz]], bitte per Post."),
    ("tuned", "prompt", "The Smiths' new address is [[ADDRESS|4 Chestnut Close, Oxford OX2 6HT]]."),
    ("tuned", "prompt", "Envoyez le colis à : Mme [[PERSON|Sophie Martin]], [[ADDRESS|5 place Bellecour, 69002 Lyon]]"),
    ("tuned", "prompt", "Ik woon op [[ADDRESS|Keizersgracht 123, 1015 CJ Amsterdam]]."),
    ("tuned", "form", "Adres: [[ADDRESS|ul. Marszałkowska 10/12, 00-590 Warszawa]]"),
    ("tuned", "form", "名前：[[PERSON|李華]]\n住所：[[ADDRESS|台北市信義區信義路五段7號]]"),
    ("tuned", "mail", "Dear Dr. [[PERSON|Achterberg-Meijer]],"),
    ("tuned", "form", "Emergency contact: [[PERSON|Halima Yusuf]] (sister)"),
    ("tuned", "prompt", "Write a reference for my former student, [[PERSON|Mateo Silva]]."),
    ("tuned", "pii_free", "Write a SQL query: SELECT FirstName, LastName FROM Employees WHERE Department = 'Sales';"),
    ("tuned", "pii_free", "What is the capital of Australia? And of New Zealand?"),
    ("tuned", "pii_free", "Explain the Treaty of Versailles in three sentences."),
    ("tuned", "pii_free", "Hello World in Rust: fn main() { println!(\"Hello, World!\"); }"),
    ("tuned", "pii_free", "Bonjour ! La météo à Paris sera ensoleillée demain."),
    ("tuned", "pii_free", "Der Zug nach München fährt um 14:32 von Gleis 5."),
    ("tuned", "pii_free", "Liste las capitales de Europa: Madrid, París, Roma, Berlín."),
    ("tuned", "pii_free", "Our office on Main Street closes at 5 pm on Fridays."),
    ("tuned", "pii_free", "Il meeting è fissato per lunedì. Grazie a tutti!"),
    ("tuned", "pii_free", "Dear Customer, your parcel from Amazon is on its way."),
    # ---------------- held out: scored, never tuned on ----------------
    ("heldout", "prompt", "Please help me write a complaint letter. My name is [[PERSON|Bartholomew Nkemelu]] and my flat is at [[ADDRESS|Flat 3, 27 Kingsley Road, Leeds LS6 2AA]]."),
    ("heldout", "prompt", "Hola, me llamo [[PERSON|Itziar Etxeberria]]. ¿Me ayudas a redactar un correo para [[EMAIL|recursos.humanos@fundacion-arte.es]]?"),
    ("heldout", "prompt", "Ich heiße [[PERSON|Björn Schäfer]], meine E-Mail ist [[EMAIL|björn.schäfer@posteo.de]]. Bitte schreib mir eine Kündigung für meinen Handyvertrag."),
    ("heldout", "prompt", "Je m'appelle [[PERSON|Anaïs Lefèvre]] et j'habite [[ADDRESS|8 avenue Jean Jaurès, 69007 Lyon]]. Peux-tu corriger ma lettre de motivation ?"),
    ("heldout", "prompt", "Contact for the venue booking: [[PERSON|Oluwaseun Bakare]], [[EMAIL|o.bakare@eventhall.ng]], [[PHONE|+234 803 555 0142]]."),
    ("heldout", "code", "-- generated by the migration tool\n-- Author: [[PERSON|Mikko Virtanen]]\nSELECT id, created_at FROM invoices WHERE paid = false;"),
    ("heldout", "mail", "Kind regards,\n[[PERSON|Fiona MacLeod]]\nHead of Operations"),
    ("heldout", "mail", "Can you check the grammar? Dear Mrs. [[PERSON|Abernathy]], thank you for your patience."),
    ("heldout", "prompt", "I need a reference letter for my colleague. Her name is [[PERSON|Xiomara Villanueva]] and she worked with us for five years."),
    ("heldout", "form", "Ship to: [[ADDRESS|1600 Amphitheatre Parkway, Mountain View, CA 94043]]"),
    ("heldout", "form", "Applicant: [[PERSON|Haddad, Youssef]]\nDate of birth: [[DATE_OF_BIRTH|1988-11-02]]"),
    ("heldout", "prompt", "我的名字是[[PERSON|陈美玲]]，请帮我预约下周的牙医。"),
    ("heldout", "form", "氏名：[[PERSON|高橋健一]]　住所：[[ADDRESS|東京都港区六本木6-10-1]]"),
    ("heldout", "prompt", "Mail from [[EMAIL|Ólafur.Jónsson@simnet.is]] bounced, can you explain the error 550?"),
    ("heldout", "ticket", "Le client [[PERSON|Théo Rousseau]] ([[EMAIL|theo.rousseau@orange.fr]]) demande un remboursement."),
    ("heldout", "clinical", "Paciente: [[PERSON|Rosario Quispe Mamani]], fecha de nacimiento [[DATE_OF_BIRTH|12/05/1979]]."),
    ("heldout", "prompt", "Send the NDA to our new partner, [[PERSON|Wojciech Kaczmarek]], at [[EMAIL|wojciech@kaczmarek-legal.pl]]."),
    ("heldout", "prompt", "Meine Adresse hat sich geändert, neu: [[ADDRESS|Schillerstraße 112, 80336 München]]."),
    ("heldout", "prompt", "Notre bureau se trouve au [[ADDRESS|45 boulevard Haussmann, 75009 Paris]]."),
    ("heldout", "form", "Dirección de envío: [[ADDRESS|Avenida de la Constitución 18, 41004 Sevilla]]"),
    ("heldout", "chat", "hey, it's [[PERSON|Lena]] from accounting, can you reset my VPN token?"),
    ("heldout", "mail", "Cheers,\n[[PERSON|Tamsin]]"),
    ("heldout", "prompt", "The tenant, [[PERSON|Grzegorz Brzęczyszczykiewicz]], has not paid rent for [[ADDRESS|52 Maple Drive, Apt 7B, Columbus, OH 43215]]."),
    ("heldout", "mail", "Sincerely yours,\n\n[[PERSON|Adaeze Chukwu]]"),
    ("heldout", "hr", "Summarize this HR note: Employee [[PERSON|Kenji Watanabe]] requested parental leave starting in May."),
    ("heldout", "prompt", "Je suis [[PERSON|Margaux Dubois]], responsable RH, et je cherche un modèle de contrat."),
    ("heldout", "prompt", "Please proofread: 'My wife, [[PERSON|Siobhán Ní Bhriain]], will attend the ceremony.'"),
    ("heldout", "chat", "Call me back at [[PHONE|+44 20 7946 0958]] and ask for [[PERSON|Eilidh]]."),
    ("heldout", "code", "Author: [[PERSON|Aleksandr Sokolov]]\nDate: 2023-04-01\nSubject: quarterly review"),
    ("heldout", "prompt", "Por favor, envía la factura a [[EMAIL|María.López@contabilidad.es]]."),
    ("heldout", "prompt", "Can you make this address label? [[PERSON|Ingrid Halvorsen]], [[ADDRESS|Storgata 15, 0184 Oslo]]"),
    ("heldout", "prompt", "Our HQ moved to [[ADDRESS|500 Boylston St, Boston, MA 02116]]."),
    ("heldout", "prompt", "名前は[[PERSON|中村さくら]]です。"),
    ("heldout", "form", "联系人：[[PERSON|赵磊]]"),
    ("heldout", "chat", "Hello [[PERSON|Dmitri]], thanks for the update on the migration."),
    ("heldout", "mail", "De: [[PERSON|Inês Carvalho]] <[[EMAIL|ines.carvalho@empresa.pt]]>\nAssunto: proposta"),
    ("heldout", "prompt", "Mi nombre es [[PERSON|Valentina Restrepo]] y necesito una carta de recomendación."),
    ("heldout", "prompt", "Il mio nome è [[PERSON|Lorenzo]] e vorrei prenotare un tavolo."),
    ("heldout", "prompt", "Please address the envelope to [[ADDRESS|742 Evergreen Terrace, Springfield, OR 97477]]."),
    ("heldout", "mail", "Viele Grüße\n[[PERSON|Sabine Krüger]]"),
    ("heldout", "mail", "Best,\n[[PERSON|Joaquín Herrera]]"),
    # clean, held out
    ("heldout", "pii_free", "SELECT c.Name, o.Total FROM Customers c JOIN Orders o ON o.CustomerId = c.Id WHERE o.Total > 100 GROUP BY c.Name;"),
    ("heldout", "pii_free", "Merci beaucoup pour la présentation d'hier. La prochaine étape est le budget."),
    ("heldout", "pii_free", "Mon équipe prépare la migration. La base de données sera indisponible samedi."),
    ("heldout", "pii_free", "Compare the healthcare systems of Canada, Norway and Singapore in a table."),
    ("heldout", "pii_free", "List five fun facts about Portugal and Greece."),
    ("heldout", "pii_free", "Escribe un poema sobre el mar. La luna brilla sobre Valencia."),
    ("heldout", "pii_free", "Rewrite in passive voice: The committee approved the new policy on Monday."),
    ("heldout", "pii_free", "CREATE TABLE Users (Id INT PRIMARY KEY, Name VARCHAR(100), Country VARCHAR(50));"),
    ("heldout", "pii_free", "Wie funktioniert eine Wärmepumpe? Bitte erkläre es einfach."),
    ("heldout", "pii_free", "Translate 'Good morning, how are you?' into Japanese and Korean."),
    ("heldout", "pii_free", "我们下周在上海开会，请准备一份议程。"),
    ("heldout", "pii_free", "Die Grenze zwischen Frankreich und Spanien verläuft entlang der Pyrenäen."),
    ("heldout", "pii_free", "La Rochelle and Le Havre are port cities; Mont Blanc is the highest peak in the Alps."),
    ("heldout", "pii_free", "Merci! Mon code compile enfin. La fonction parse() renvoie bien une Option."),
    ("heldout", "pii_free", "Greetings from Argentina! The team in Chile says hello too."),
    # held out, second batch (written with the tuned second batch, never tuned on)
    ("heldout", "prompt", "Hi there! My name is [[PERSON|Rahel Tesfaye]] and I'm a nurse in Addis Ababa. Can you help me write a CV?"),
    ("heldout", "mail", "Attendees: [[PERSON|Sander Visser]], [[PERSON|Marta Kowalczyk]], [[PERSON|Jun Park]]"),
    ("heldout", "prompt", "Hola, soy [[PERSON|Martina Gutiérrez]], escríbeme a [[EMAIL|martina.gutierrez@ejemplo.com]]."),
    ("heldout", "prompt", "Please send the documents to my lawyer, [[PERSON|Beatrix Oyelaran-Smith]], at [[ADDRESS|9 Mercer Street, Suite 4, Jersey City, NJ 07302]]."),
    ("heldout", "prompt", "Ich wohne in der [[ADDRESS|Bergmannstraße 12, 10961 Berlin]], und mein Name ist [[PERSON|Cem Aydın]]."),
    ("heldout", "prompt", "Je vous écris de la part de ma sœur, [[PERSON|Ophélie Garnier]]."),
    ("heldout", "mail", "Warm regards,\n[[PERSON|Tobiah Whitlock]]"),
    ("heldout", "form", "Adresse de livraison : [[ADDRESS|3 allée des Tilleuls, 33000 Bordeaux]]"),
    ("heldout", "prompt", "我叫[[PERSON|刘洋]]，住在[[ADDRESS|上海市徐汇区漕溪北路398号]]。"),
    ("heldout", "mail", "お世話になっております。担当の[[PERSON|鈴木]]です。"),
    ("heldout", "chat", "Hey, it's me, [[PERSON|Oskar]]. Call me at [[PHONE|+46 70 123 45 67]]."),
    ("heldout", "form", "Contact person: Dr. [[PERSON|Ilse Vandenberghe]] ([[EMAIL|ilse.vandenberghe@ugent.be]])"),
    ("heldout", "form", "Spedire a: [[ADDRESS|Via Garibaldi 8, 10122 Torino]]"),
    ("heldout", "form", "Customer Name: [[PERSON|Thandiwe Mokoena]]\nCustomer Email: [[EMAIL|thandi.m@webmail.co.za]]"),
    ("heldout", "prompt", "Ship to [[ADDRESS|2200 Mission College Blvd, Santa Clara, CA 95054]], attention [[PERSON|Hiroshi Tanaka]]."),
    ("heldout", "prompt", "The report was written by [[PERSON|Elżbieta Wróblewska]] and reviewed by [[PERSON|Mateusz Lis]]."),
    ("heldout", "prompt", "Ahoj, jmenuji se [[PERSON|Tereza Nováková]] a bydlím na adrese [[ADDRESS|Vinohradská 48, 120 00 Praha]]."),
    ("heldout", "mail", "Un saludo,\n[[PERSON|Álvaro Castillo]]"),
    ("heldout", "form", "Sign-up form: first name: [[PERSON|Noor]]; last name: [[PERSON|Haddad]]; email: [[EMAIL|noor.haddad@mail.jo]]"),
    ("heldout", "pii_free", "Write a function in Python that returns the Fibonacci sequence."),
    ("heldout", "pii_free", "What's the weather usually like in Norway in June?"),
    ("heldout", "pii_free", "SELECT * FROM Products WHERE Price > 20 AND Category = 'Books';"),
    ("heldout", "pii_free", "Bonjour à tous ! La réunion commence à 10 h. Merci d'être à l'heure."),
    ("heldout", "pii_free", "Mi equipo prefiere Java; Mon équipe préfère Kotlin."),
    ("heldout", "pii_free", "Dear Sir or Madam, please find attached our catalogue for Spring."),
    ("heldout", "pii_free", "Explica la diferencia entre Argentina y Uruguay en la Copa América."),
    ("heldout", "pii_free", "Liebe Kolleginnen und Kollegen, das Sommerfest findet im Juli statt."),
    ("heldout", "pii_free", "北京和上海哪个城市更适合旅游？"),
    ("heldout", "pii_free", "Give me 3 tips for visiting Lisbon and Porto."),
]


def render(marked):
    out, spans, pos, last = [], [], 0, 0
    for m in MARK.finditer(marked):
        lead = marked[last:m.start()]
        out.append(lead)
        pos += len(lead.encode("utf-8"))
        value = m.group(2)
        n = len(value.encode("utf-8"))
        spans.append({"start": pos, "end": pos + n, "type": m.group(1)})
        out.append(value)
        pos += n
        last = m.end()
    out.append(marked[last:])
    return "".join(out), spans


def main():
    path = ROOT / "conformance" / "detection" / "dev.jsonl"
    counts = {}
    with open(path, "w", encoding="utf-8") as f:
        for n, (split, kind, marked) in enumerate(DOCS, 1):
            text, spans = render(marked)
            assert "[[" not in text and "]]" not in text, marked
            assert (kind == "pii_free") == (not spans), marked
            counts[split] = counts.get(split, 0) + 1
            doc = {"id": f"dev-{n:04d}", "kind": kind, "split": split, "text": text, "spans": spans}
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(path, counts)


if __name__ == "__main__":
    main()
