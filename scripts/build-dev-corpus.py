#!/usr/bin/env python3
"""Builds conformance/detection/dev.jsonl, the development corpus of issue 20.

Unlike corpus.jsonl (generated from templates and name lists), every document here is written
by hand, one by one: prompts a person would send to an assistant, forms, signatures, code
headers and mail snippets in English, German, French, Spanish, Italian, Portuguese, Dutch,
Czech, Icelandic, Chinese and Japanese. Values are marked inline as [[TYPE|value]]; this
script strips the marks and records byte offsets, in the line format of corpus.jsonl plus a
"split" field: "tuned" documents may be looked at while tuning the detector, "heldout"
documents are only scored (see docs/detection.md), and a "round" field: 1 for the first round
of issue 20 (names, addresses, e-mail), 2 for the second (numbers with cues, dates, national
phones, devices, secrets, cards, version pins; also Korean, Russian, Polish, Swedish and a few
public-domain passages: the US Constitution's preamble, the Gettysburg Address, the openings of
Pride and Prejudice, Moby-Dick, Les Misérables, Don Quixote and Grimm's Little Red Riding Hood,
some with a value inserted), and 3 for a held-out batch written after round 2's rules. Round
2's own held-out documents are marked "seen": they were in view while round 2's unit tests were
written, and several tests reuse their values and phrasings. Every value of rounds 2 and 3 was
made up for them; card numbers, IBANs and
IMEIs carry valid checksums, computed once and written in as literals.

Annotation: a PERSON span is the name without a title (`Dr. [[PERSON|Anna Berg]]`); an
ADDRESS span is the whole address, street to postcode and city (no country); `Last, First`
is one PERSON span. A phone's extension is part of it (`650-752-7354x549`, `ext. 22`); a
label glued after it is not (`781-618-4959-Fax` is a FAX of twelve characters). A bearer
token or a secret after `key:` is the token alone.
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"\[\[([A-Z_]+)\|(.*?)\]\]", re.S)

# Marks where the documents of issue 20's second round start (numbers, dates, phones, devices,
# secrets, cards and version pins); the first round wrote names, addresses and e-mail.
ROUND_2 = object()
# Round 3: a held-out batch written after the rules of round 2, because round 2's held-out
# documents were in view while its unit tests were written (several tests reuse their values and
# phrasings); round 2's held-out documents are marked "seen" instead.
ROUND_3 = object()

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
    ROUND_2,
    # ---------------- batch 3 (numbers, dates, phones, devices, secrets, cards; written
    # before any detector change for them), tuned ----------------
    ("tuned", "form", "Employment eligibility (I-9), section 1\nSSN: [[US_SSN|057866324]]\nDate of birth: [[DATE_OF_BIRTH|1975-04-14]]"),
    ("tuned", "chat", "my SS# is [[US_SSN|150182013]] if you need it for the claim"),
    ("tuned", "clinical", "Chart #: [[MEDICAL_RECORD_NUMBER|358-63-50]]. Medicare MBI [[HEALTH_PLAN_ID|1M46-AW8-JG54]]; seen today for a follow-up."),
    ("tuned", "form", "Insurance card\nSubscriber ID: [[HEALTH_PLAN_ID|XJH829104455]]\nPlan: Gold PPO"),
    ("tuned", "ticket", "Kundennummer [[ACCOUNT_NUMBER|4471-2290-18]], Telefon: [[PHONE|0211/2542890]]. Der Router startet ständig neu."),
    ("tuned", "chat", "Handy: [[PHONE|0170 46829402]], ab 18 Uhr erreichbar."),
    ("tuned", "mail", "Vous pouvez me joindre au [[PHONE|05.53.18.69.64]] ou sur mon portable au [[PHONE|06 12 34 56 78]]."),
    ("tuned", "chat", "Meu celular é [[PHONE|(21) 99249-7822]] e o telefone fixo [[PHONE|(21) 3249-7822]]."),
    ("tuned", "prompt", "请帮我填写表格。电话：[[PHONE|13812345678]]，出生日期：[[DATE_OF_BIRTH|1985年7月6日]]。"),
    ("tuned", "form", "携帯：[[PHONE|090-1234-5678]]\n生年月日：[[DATE_OF_BIRTH|1985年7月6日]]"),
    ("tuned", "mail", "Call me at [[PHONE|650-752-7354x549]] or send it to [[FAX|781-618-4959]]-Fax."),
    ("tuned", "mail", "Thanks,\nthe billing team\nDesk: [[PHONE|6507527354]]\nMobile: [[PHONE|(650) 555-0187 ext. 22]]"),
    ("tuned", "form", "Fecha de nacimiento: [[DATE_OF_BIRTH|26 de octubre de 1990]]. Teléfono: [[PHONE|612 34 56 78]]."),
    ("tuned", "prompt", "Traduis en anglais : née le [[DATE_OF_BIRTH|3 mars 1984]] à Lyon, elle a grandi à Bordeaux."),
    ("tuned", "form", "Frau [[PERSON|Hannelore Brink]], geb. [[DATE_OF_BIRTH|25.07.1948]], wohnhaft in Köln."),
    ("tuned", "form", "Data di nascita: [[DATE_OF_BIRTH|12/05/1979]]; codice cliente [[ACCOUNT_NUMBER|88120455]]."),
    ("tuned", "clinical", "Patient: [[PERSON|Ruth Okafor]] ([[DATE_OF_BIRTH|02/11/1957]]) presents with a dry cough for two weeks."),
    ("tuned", "ticket", "The laptop with MAC [[DEVICE_ID|00:1A:2B:3C:4D:5E]] and the phone with IMEI [[DEVICE_ID|353918057421873]] keep dropping off the Wi-Fi."),
    ("tuned", "log", "dhcpd: lease for [[DEVICE_ID|3c-22-fb-91-0a-7e]] expired, reclaiming address"),
    ("tuned", "ticket", "Device serial: [[DEVICE_ID|C02XL0GHJG5H]], bought in 2021, screen flickers."),
    ("tuned", "code", "# .env for production\nSTRIPE_SECRET_KEY=[[API_KEY|sk_live_51u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzdocJ2isAjIhKtJ0RlgLKO]]\nDEBUG=false\n"),
    ("tuned", "code", "curl -H \"Authorization: Bearer [[API_KEY|a6f0fb23c6f5da2cec255404e4fb440034d66086]]\" [[URL|https://api.example.com/v1/items]]"),
    ("tuned", "prompt", "このエラーを説明してください。アクセスキーは[[AWS_ACCESS_KEY|AKIA566TFJGVQ6KBNXJB]]です。"),
    ("tuned", "code", "signing:\n  key: [[API_KEY|hoIE33DGLpsBxswmLCR5nrkejg9TroSHjnvIxhvijw4=]]\n  algorithm: HS256\n"),
    ("tuned", "prompt", "Charge [[CREDIT_CARD|4294 0283 8304 7808]] 12/27 CVV 318 for order 55190, please."),
    ("tuned", "chat", "I only have a Maestro card: [[CREDIT_CARD|5018 1375 6266]], exp 09/28."),
    ("tuned", "prompt", "Is this an old 15-digit JCB card number? [[CREDIT_CARD|213149509940464]]"),
    ("tuned", "form", "iban: [[IBAN|de14 4283 4355 7193 3471 40]]\nbic: COBADEFFXXX"),
    ("tuned", "prompt", "My car's license plate is [[VEHICLE_ID|8XKR 412]], a blue hatchback, parked on level 2."),
    ("tuned", "form", "driver's license: [[US_DRIVER_LICENSE|d123-4567-8901]] (IL)"),
    ("tuned", "mail", "Your loan account [[ACCOUNT_NUMBER|00-1234567-8]] is two payments behind."),
    ("tuned", "chat", "account # [[ACCOUNT_NUMBER|7734-001928]] was charged twice"),
    ("tuned", "form", "전화번호: [[PHONE|010-1234-5678]]\n생년월일: [[DATE_OF_BIRTH|1990년 3월 15일]]"),
    ("tuned", "form", "Телефон: [[PHONE|+7 916 123-45-67]]\nДата рождения: [[DATE_OF_BIRTH|12.04.1986]]"),
    ("tuned", "prompt", "Mijn telefoonnummer is [[PHONE|06-12345678]] en ik ben geboren op [[DATE_OF_BIRTH|14-02-1991]]."),
    ("tuned", "form", "Numer telefonu: [[PHONE|+48 601 234 567]], data urodzenia: [[DATE_OF_BIRTH|1988-11-30]]."),
    ("tuned", "chat", "Please update my card to [[CREDIT_CARD|5574 4724 7063 7428]] 11 28 and keep ticket 88123 open."),
    ("tuned", "form", "Social Security number: [[US_SSN|296 72 8031]]"),
    ("tuned", "form", "Versichertennummer: [[HEALTH_PLAN_ID|A123456780]]"),
    ("tuned", "ticket", "The kiosk at [[IP_ADDRESS|10.24.8.113]] (MAC [[DEVICE_ID|AC:DE:48:00:11:22]]) lost its lease."),
    ("tuned", "form", "设备序列号：[[DEVICE_ID|SN20231188475]]"),
    ("tuned", "mail", "Please rotate [[API_KEY|rk_live_51hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rESQedUStPKR0CsTy]] before Friday."),
    ("tuned", "code", "HF_TOKEN=[[API_KEY|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]] python train.py"),
    ("tuned", "code", "GOOGLE_API_KEY: \"[[API_KEY|AIzag6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po-]]\""),
    ("tuned", "form", "振込先 口座番号：[[BANK_ACCOUNT|1234567]]"),
    ("tuned", "form", "银行卡号：[[CREDIT_CARD|6201 8827 6344 1190 398]]"),
    ("tuned", "chat", "ring me on [[PHONE|020 7946 0958]] after lunch"),
    ("tuned", "prompt", "Write a birthday poem. I was born on [[DATE_OF_BIRTH|July 4th, 1976]]."),
    ("tuned", "prompt", "Réécris ce message : « Bonjour, rappelez-moi au [[PHONE|04 72 10 33 58]], merci. »"),
    ("tuned", "code", "npm config set //registry.npmjs.org/:_authToken [[API_KEY|npm_hDavJA76rNicHTp8hkqdlm7tOtHWnsCGRlrw]]"),
    ("tuned", "pii_free", "pip install numpy==1.26.4 pandas==2.1.4; agent 4.19.33.196 reported healthy."),
    ("tuned", "pii_free", "Firmware 10.2.14.201 fixes the boot loop; kernel 5.15.0.91 is not affected."),
    ("tuned", "pii_free", "Order 4471-2290-18 shipped on 2024-05-03; invoice INV-2024-00912 is attached."),
    ("tuned", "pii_free", "2024-05-03 10:15:22,118 INFO worker 3 finished batch 4411 in 0.82 s"),
    ("tuned", "pii_free", "Versions: node 20.11.1, npm 10.2.4, chrome 120.0.6099.109, agent 4.19.33.196"),
    ("tuned", "pii_free", "バージョン 4.19.33.196 をインストールしてから再起動してください。"),
    ("tuned", "pii_free", "订单号：202311180045，请在3日内付款。"),
    ("tuned", "pii_free", "The French number format groups digits in pairs; prices are 12.50 €, 105.00 € and 18.99 €."),
    ("tuned", "pii_free", "We the People of the United States, in Order to form a more perfect Union, establish Justice, insure domestic Tranquility, provide for the common defence, promote the general Welfare, and secure the Blessings of Liberty to ourselves and our Posterity, do ordain and establish this Constitution for the United States of America."),
    ("tuned", "prompt", "Summarize this for my reading group: \"Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty, and dedicated to the proposition that all men are created equal.\" Questions go to [[PHONE|+1 217 555 0143]]."),
    ("tuned", "pii_free", "Section 3.2.1.4 describes the interface; see also 3.2.1.5."),
    ("tuned", "pii_free", "Set the timeout to 30000 ms, retries to 5 and the port to 8443; the build is 2024.05.17."),
    # ---------------- batch 3, held out: scored, never tuned on ----------------
    ("heldout", "prompt", "Hi! Could you draft a letter to the IRS for me? My social security number is [[US_SSN|052016139]] and I was born [[DATE_OF_BIRTH|March 9, 1961]]."),
    ("heldout", "clinical", "Paciente con historia clínica n.º [[MEDICAL_RECORD_NUMBER|2024-118733]], nacido el [[DATE_OF_BIRTH|02/03/1954]], acude por dolor torácico."),
    ("heldout", "mail", "Rufnummer: [[PHONE|030 12345678]] (Büro), mobil [[PHONE|0151 2345 6789]]"),
    ("heldout", "mail", "Merci de rappeler Mme [[PERSON|Lefort]] au [[PHONE|01 42 68 53 00]] avant vendredi."),
    ("heldout", "chat", "WhatsApp: [[PHONE|(11) 98765-4321]]"),
    ("heldout", "form", "联系电话：[[PHONE|021-6278 9900]]"),
    ("heldout", "mail", "お問い合わせは電話 [[PHONE|03-1234-5678]] までお願いします。"),
    ("heldout", "prompt", "For support call [[PHONE|1-800-555-0199 ext 4417]] and mention the outage."),
    ("heldout", "mail", "Tel [[PHONE|212.555.0148]] | Fax [[FAX|212.555.0149]]"),
    ("heldout", "form", "Date of birth (as on passport): [[DATE_OF_BIRTH|14/03/1962]]"),
    ("heldout", "form", "Geburtsdatum [[DATE_OF_BIRTH|3. Mai 1979]], Versichertennummer [[HEALTH_PLAN_ID|K847362915]]"),
    ("heldout", "prompt", "她出生于[[DATE_OF_BIRTH|1992年11月3日]]，身份证已经上传了。"),
    ("heldout", "chat", "誕生日は[[DATE_OF_BIRTH|2001年2月28日]]です。"),
    ("heldout", "mail", "Mia madre è nata il [[DATE_OF_BIRTH|7 settembre 1983]] a Napoli."),
    ("heldout", "form", "Member #: [[HEALTH_PLAN_ID|W229104877]]; please verify coverage before the visit."),
    ("heldout", "clinical", "MRN# [[MEDICAL_RECORD_NUMBER|7741-22-09]] transferred to the ICU overnight."),
    ("heldout", "form", "SSN:[[US_SSN|434576781]]"),
    ("heldout", "chat", "my medicare number is [[HEALTH_PLAN_ID|5H69VP3VM06]] (no dashes on the card)"),
    ("heldout", "form", "Routing [[ROUTING_NUMBER|120218332]], checking account [[BANK_ACCOUNT|0044718823]]."),
    ("heldout", "form", "Kennzeichen: [[VEHICLE_ID|B-MW 4471]]"),
    ("heldout", "form", "DL#: [[US_DRIVER_LICENSE|F255-921-50-094-0]]"),
    ("heldout", "chat", "pls send the refund to iban [[IBAN|nl80rabo3226718068]] thx"),
    ("heldout", "mail", "Bitte überweisen Sie den Betrag auf IBAN [[IBAN|DE56 5055 1587 3075 6183 43]]."),
    ("heldout", "ticket", "Wi-Fi MAC: [[DEVICE_ID|f4:5c:89:ab:10:3e]]"),
    ("heldout", "ticket", "Bluetooth address [[DEVICE_ID|F4-5C-89-AB-10-3F]] will not pair."),
    ("heldout", "form", "IMEI: [[DEVICE_ID|35 209900 176148 1]]"),
    ("heldout", "ticket", "The tablet (serial [[DEVICE_ID|DMPXK2Q1JF8J]]) was returned with a cracked screen."),
    ("heldout", "code", "export STRIPE_KEY=[[API_KEY|sk_test_51mxgJTeKdNnFRIBXuDL7DxtpYlSXpfKtHF4vUCsMe]]"),
    ("heldout", "code", "GET /v1/files HTTP/1.1\nAuthorization: Bearer [[API_KEY|ya29.a0Af59FHz5r1pY4OjE2jBMptUsGr7CmY-uCu3ZR1zTOlUcR64cXQLioDnkHIfxIq]]"),
    ("heldout", "prompt", "AWSのアクセスキーID：[[AWS_ACCESS_KEY|AKIATFQXKWOVOMPZOM7W]]、リージョンは東京です。"),
    ("heldout", "code", "oauth:\n  client_secret: \"[[API_KEY|0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3]]\""),
    ("heldout", "mail", "The webhook signing secret is [[API_KEY|whsec_4Qwb8DwkNhFdnXsiVpzz63FfkCzJr4i0]], keep it safe."),
    ("heldout", "chat", "card [[CREDIT_CARD|3530 7020 5132 9682]] exp 04/27 cvc 991"),
    ("heldout", "form", "Maestro-Karte: [[CREDIT_CARD|6304 4468 3092]]"),
    ("heldout", "mail", "My Amex [[CREDIT_CARD|3779 336512 67285]] was billed 12 times in 2023."),
    ("heldout", "form", "Kartennummer: [[CREDIT_CARD|4461689267253478]], Ablauf 08/29, Prüfnummer 442"),
    ("heldout", "chat", "Мой номер: [[PHONE|+7 916 555-12-34]]"),
    ("heldout", "form", "Cellulare: [[PHONE|347 123 4567]]"),
    ("heldout", "chat", "Ring mig på [[PHONE|070-123 45 67]] i kväll."),
    ("heldout", "clinical", "[[PERSON|Marcus Hale]], [[DATE_OF_BIRTH|1979-08-22]], was enrolled in the study in May."),
    ("heldout", "form", "Client: [[PERSON|Imani Brooks]] | DOB: [[DATE_OF_BIRTH|11/30/1990]] | Acct: [[ACCOUNT_NUMBER|55-20193-7]]"),
    ("heldout", "form", "연락처: [[PHONE|02-312-4567]]"),
    ("heldout", "form", "Telemóvel: [[PHONE|912 345 678]]"),
    ("heldout", "form", "telefon: [[PHONE|+420 601 123 456]]; datum narození: [[DATE_OF_BIRTH|4. 6. 1975]]"),
    ("heldout", "prompt", "The shared key is [[API_KEY|PzBGCsUZgXOPB8Lk6RBxU5z5gZuDM7FG]], do not post it in the channel."),
    ("heldout", "prompt", "Call me [[PERSON|Ishmael]]. Some years ago, never mind how long precisely, having little or no money in my purse, I thought I would sail about a little."),
    ("heldout", "prompt", "Translate: \"En 1815, M. [[PERSON|Charles-François-Bienvenu Myriel]] était évêque de Digne.\""),
    ("heldout", "ticket", "Sensor gateway [[DEVICE_ID|864452039319775]] (IMEI) stopped reporting at 03:10."),
    ("heldout", "mail", "Please call our agent at [[PHONE|415-555-0172]] to reschedule."),
    ("heldout", "pii_free", "requirements: django==4.2.7, celery==5.3.6, redis>=5.0.1.2"),
    ("heldout", "pii_free", "Our agent build 7.2.10.144 rolls out to 12.5 % of hosts this week."),
    ("heldout", "pii_free", "Upgrade path: 3.4.2.1, then 3.5.0.0, then 4.0.0.12."),
    ("heldout", "pii_free", "Zahlen Sie 1.250,00 € bis zum 15.08.2024 (Rechnung 2024-0815)."),
    ("heldout", "pii_free", "Python 3.11.6 on Linux 6.5.0.27, glibc 2.35, openssl 3.0.2.15"),
    ("heldout", "pii_free", "版本号 4.19.33.196 已发布，请升级。"),
    ("heldout", "pii_free", "The meeting moved from 2024/03/14 to 2024/03/21 because of the holiday."),
    ("heldout", "pii_free", "ISBN 978-3-16-148410-0 and DOI 10.1000/182 are cited in chapter 4."),
    ("heldout", "pii_free", "Kapitel 3.2.1.4 beschreibt die Schnittstelle, Kapitel 3.2.2 die Fehlercodes."),
    ("heldout", "pii_free", "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."),
    ("heldout", "pii_free", "En un lugar de la Mancha, de cuyo nombre no quiero acordarme, no ha mucho tiempo que vivía un hidalgo de los de lanza en astillero."),
    ("heldout", "pii_free", "Es war einmal eine kleine süße Dirne, die hatte jedermann lieb, der sie nur ansah, am allerliebsten aber ihre Großmutter."),
    ("heldout", "pii_free", "Throughput rose from 1.2 to 3.4 GB/s; 95th percentile 18.7 ms; error rate 0.03 %."),
    ("heldout", "pii_free", "商品コード 4901234567894 の在庫は 120 個です。"),
    ("heldout", "pii_free", "Tracking number 1Z999AA10123456784, delivery window 10:00-12:00."),
    ROUND_3,
    # ---------------- round 3: held out only, written after the round-2 rules and scored
    # once; nothing in it was read for tests or rules ----------------
    ("heldout", "chat", "hey can u update my number on file to [[PHONE|917-555-0163]]? old one is dead"),
    ("heldout", "mail", "Guten Tag, bitte rufen Sie mich unter der Nummer [[PHONE|0221 9876543]] zurück. Meine Versicherungsnummer lautet [[HEALTH_PLAN_ID|M482910377]]."),
    ("heldout", "form", "Nom : [[PERSON|Garnier]]\nPrénom : [[PERSON|Sylvie]]\nTél. : [[PHONE|03 88 45 12 07]]\nDate de naissance : [[DATE_OF_BIRTH|17/09/1971]]"),
    ("heldout", "prompt", "Necesito cambiar la tarjeta asociada. La nueva es [[CREDIT_CARD|4905 6223 2670 6263]], caduca en 05/29."),
    ("heldout", "ticket", "Customer says the charge on [[CREDIT_CARD|6011 0306 9315 2382]] appeared twice on 2024-02-11. Refund ticket 77120."),
    ("heldout", "code", "const stripe = require('stripe')('[[API_KEY|sk_live_ifI7k7Ay9bY6oTANWK9wGU35UVgJgP4vtfhTUJqIabBxVZs0]]');"),
    ("heldout", "code", "[default]\naws_access_key_id = [[AWS_ACCESS_KEY|AKIAALHQ5JBBI5JY3TDK]]\naws_secret_access_key = [[API_KEY|qhubkM5n9ZZmiots0eKKtuzWIuk3kzZPr3/H]]\nregion = eu-west-1"),
    ("heldout", "log", "2024-03-02T08:14:55Z auth ok token=[[API_KEY|a68d0511111715f726a022d92ea323a0]] user_id=41"),
    ("heldout", "clinical", "Pt. DOB [[DATE_OF_BIRTH|9/14/1948]], MRN [[MEDICAL_RECORD_NUMBER|000918273]]. Discharged [[DATE|03/22/2024]] in stable condition."),
    ("heldout", "clinical", "Der Patient, geboren [[DATE_OF_BIRTH|14.11.1939]], wurde am [[DATE|02.03.2024]] aufgenommen."),
    ("heldout", "form", "Nombre: [[PERSON|Lucía Herrera]]\nTeléfono móvil: [[PHONE|654 321 987]]\nIBAN: [[IBAN|ES87 7596 8337 2394 1473 6954]]"),
    ("heldout", "mail", "Veuillez virer le montant sur le compte [[IBAN|FR29 6701 1083 79K8 2277 0451 297]] avant la fin du mois."),
    ("heldout", "chat", "meine iban ist [[IBAN|at33 8139 3755 8093 1779]], danke!"),
    ("heldout", "ticket", "Phone won't register on the network. IMEI [[DEVICE_ID|359794107053402]], model A2643."),
    ("heldout", "ticket", "The router's MAC is [[DEVICE_ID|B8:27:EB:4F:1C:9A]] and it keeps getting [[IP_ADDRESS|192.168.0.57]]."),
    ("heldout", "prompt", "我的手机号是[[PHONE|15921876543]]，生日是[[DATE_OF_BIRTH|1994年5月20日]]，请帮我注册。"),
    ("heldout", "mail", "ご連絡先：[[PHONE|080-4412-9087]]（携帯）"),
    ("heldout", "form", "휴대폰: [[PHONE|010-9876-5432]]"),
    ("heldout", "chat", "Позвоните мне: [[PHONE|+7 495 123-45-67]]"),
    ("heldout", "form", "Telefon komórkowy: [[PHONE|+48 512 345 678]]"),
    ("heldout", "mail", "Ring me on [[PHONE|07700 900123]] if the courier is late."),
    ("heldout", "form", "Cust. acct no. [[ACCOUNT_NUMBER|3381-0092-44]]"),
    ("heldout", "form", "Policy number: [[HEALTH_PLAN_ID|HMO-448129033]]"),
    ("heldout", "clinical", "Medical record number: [[MEDICAL_RECORD_NUMBER|88-2291-0]]; allergies: penicillin."),
    ("heldout", "prompt", "Write a polite reminder: my social is [[US_SSN|512-44-8731]], the form still shows the wrong one."),
    ("heldout", "form", "SSN (no dashes): [[US_SSN|512448731]]"),
    ("heldout", "chat", "license plate on the rental is [[VEHICLE_ID|6TRJ244]]"),
    ("heldout", "form", "Driver License #: [[US_DRIVER_LICENSE|D1234-56789-01234]]"),
    ("heldout", "code", "headers = {\"Authorization\": \"Bearer [[API_KEY|hNHTtMFCtrOfiB3wm4HO4xcww1PjwKJZoyg9]]\"}"),
    ("heldout", "chat", "my new card is a maestro [[CREDIT_CARD|5020 9627 8325]]"),
    ("heldout", "mail", "Amex ending in 9789, full number [[CREDIT_CARD|371097269689789]], was declined."),
    ("heldout", "prompt", "Translate to English: «Sono nato il [[DATE_OF_BIRTH|4 aprile 1968]] a Bari e il mio cellulare è [[PHONE|333 987 6543]].»"),
    ("heldout", "form", "Geboortedatum: [[DATE_OF_BIRTH|03-08-1985]]\nTelefoonnummer: [[PHONE|020 123 4567]]"),
    ("heldout", "prompt", "Doğum tarihim [[DATE_OF_BIRTH|12.06.1990]], telefonum [[PHONE|0532 123 45 67]]."),
    ("heldout", "ticket", "Serial number [[DEVICE_ID|FVFXK3Q4HV2J]] – battery swelling."),
    ("heldout", "mail", "Please wire it to routing number [[ROUTING_NUMBER|021000021]], account [[BANK_ACCOUNT|483920117]]."),
    ("heldout", "clinical", "Seen on [[DATE|April 2, 2024]] for follow-up; next visit [[DATE|May 14, 2024]]."),
    ("heldout", "pii_free", "Install with pip install requests==2.31.0 urllib3==2.2.1 and restart the collector 3.8.12.7."),
    ("heldout", "pii_free", "The sensor firmware moved from 2.14.0.311 to 2.15.1.4 last week; no reboots since."),
    ("heldout", "pii_free", "Room 0.21 on floor 3, the printer is 4th on the left; call-back queue length 12."),
    ("heldout", "pii_free", "Le train de 08 h 15 arrive à 10 h 42 ; billet à 39,90 €, voiture 12, place 045."),
    ("heldout", "pii_free", "Der Zug hat 12 Minuten Verspätung, Gleis 7, Abfahrt 14:35, Preis 29,90 €."),
    ("heldout", "pii_free", "SELECT id, created_at FROM sessions WHERE expires_at < NOW() - INTERVAL '30 days';"),
    ("heldout", "pii_free", "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("heldout", "pii_free", "The API key rotation policy is 90 days; keys are stored in the vault, never in code."),
    ("heldout", "pii_free", "会議は2024年4月1日に延期されました。資料は共有フォルダにあります。"),
    ("heldout", "pii_free", "请在系统中输入订单编号并点击确认，处理时间约为3个工作日。"),
    ("heldout", "pii_free", "Part numbers 0402-1101-22 and 0402-1101-23 are out of stock until Q3."),
    ("heldout", "pii_free", "The GPU has 24 GB, bandwidth 1008 GB/s, boost clock 2520 MHz, driver 551.86."),
    ("heldout", "pii_free", "Four score and seven years later the hall was rebuilt, and 1,200 people attended the reopening."),
    ("heldout", "pii_free", "Call of Duty 4 and Age of Empires II were the most played games at the 2005 LAN party."),
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
        rnd = 1
        n = 0
        for entry in DOCS:
            if entry is ROUND_2:
                rnd = 2
                continue
            if entry is ROUND_3:
                rnd = 3
                continue
            n += 1
            split, kind, marked = entry
            if rnd == 2 and split == "heldout":
                split = "seen"
            text, spans = render(marked)
            assert "[[" not in text and "]]" not in text, marked
            assert (kind == "pii_free") == (not spans), marked
            counts[split] = counts.get(split, 0) + 1
            doc = {"id": f"dev-{n:04d}", "kind": kind, "split": split, "round": rnd, "text": text, "spans": spans}
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(path, counts)


if __name__ == "__main__":
    main()
