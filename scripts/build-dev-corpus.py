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
some with a value inserted), 3 for a held-out batch written after round 2's rules, and 4 for a
tuned and a held-out half written by a second author who saw neither the detector nor the
documents before. Round
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
# Round 4: written by a second author (2026-12-03) who saw neither the detector, its tests and
# docs, nor the documents above: other phrasing, other genres (CRM exports, logs, stack traces,
# legal, HR, travel) and 24 languages. Its tuned half may be read while tuning; its held-out
# half is only scored.
ROUND_4 = object()
# Round 5: written by a third author (2026-12-04) under the same blindness, with names and
# postal addresses as most of its values (in nine languages), and PII-free documents that are
# hard for names: firms, eponyms, teams, software. Its held-out half was first scored on the
# build that brought the census name lists, before anything was tuned on round 5.
ROUND_5 = object()

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
    ROUND_4,
    # ---------------- round 4: a second author's documents, tuned and held out ----------------
    ("tuned", "prompt", "Can you summarize this email in three bullet points for my manager?\n\n---\nHi [[PERSON|Priyanka]],\nFollowing up on our call: the vendor audit moves to next Thursday. [[PERSON|Odhiambo]] from procurement will join, and I've asked him to bring the signed NDA. If anything changes, ring me on [[PHONE|(415) 308-2716]] or just reply here.\nThanks,\n[[PERSON|Tobias Wrenfield]]\n[[EMAIL|tobias.wrenfield@harrowgate-consult.com]]"),
    ("heldout", "prompt", "Rewrite this to sound friendlier, keep it short:\n\"Mrs. [[PERSON|Okonkwo-Bell]], your parcel was returned to our depot at [[ADDRESS|2290 Larkspur Ave, Unit 4B, Dayton, OH 45419]] because no one answered. Call [[PHONE|937-482-6610 ext. 31]] before Friday or it goes back to the sender. - Dispatch, [[PERSON|Reggie Albano]]\""),
    ("tuned", "pii_free", "Release notes 4.12.0 (build 9f3c2e7a1b)\n- Bumped numpy==1.26.4 and pandas==2.2.1; dropped Python 3.8.\n- Fixed a race in the upload worker that returned HTTP 502 under load above 1,200 req/s.\n- Tested on Ubuntu 22.04 with kernel 6.5.0.27 and on macOS Sonoma 14.4.\n- Known issue: Chrome 123 on Windows renders the export dialog off-screen when scaling is 150 %.\nSee § 4.2 of the upgrade guide before migrating from 3.x."),
    ("heldout", "pii_free", "Incident summary INC-20931\nStart: 2024-03-18 07:42:10 UTC, resolved 09:15:55 UTC.\nImpact: checkout returned 503 for roughly 14% of requests in eu-west-1; orders ORD-7781204 through ORD-7781399 were retried automatically.\nRoot cause: a config push (commit a41e09c) lowered the Redis pool from 64 to 8 connections.\nFollow-up: add a canary stage in Frankfurt and Dublin before global rollout; owner: Payments Platform team.\nNo customer data was exposed."),
    ("tuned", "form", "Anmeldeformular Sportverein TSV Grünwiesen 1921 e.V.\nName: [[PERSON|Schulte-Brandauer, Henrike]]\nGeburtsdatum: [[DATE_OF_BIRTH|14.07.1987]]\nAnschrift: [[ADDRESS|Lindenhofweg 23a, 82031 Grünwald]]\nTelefon: [[PHONE|089 64 91 27 53]]\nMobil: [[PHONE|+49 171 3859204]]\nE-Mail: [[EMAIL|henrike.sb@posteo.de]]\nSEPA-Lastschrift – IBAN: [[IBAN|DE62 3704 8456 4626 6096 55]]\nKontoinhaber: [[PERSON|Jörg Brandauer]]"),
    ("heldout", "form", "FICHE D'INSCRIPTION – Médiathèque intercommunale\nNom : [[PERSON|LEFÈVRE-DIALLO]]\nPrénom : [[PERSON|Aïssatou]]\nNée le : [[DATE_OF_BIRTH|03/11/1994]]\nAdresse : [[ADDRESS|17 bis, rue des Tanneurs, 69007 Lyon]]\nTél. : [[PHONE|06 42 18 77 90]]\nCourriel : [[EMAIL|aissatou.lefevre@orange.fr]]\nRIB / IBAN pour la caution : [[IBAN|FR06 2955 2687 2900 4528 6049 634]]"),
    ("tuned", "clinical", "DISCHARGE SUMMARY\nPatient: [[PERSON|Marisol Quintanilla-Reyes]]   MRN: [[MEDICAL_RECORD_NUMBER|00482915]]   DOB: [[DATE_OF_BIRTH|02/19/1961]]\nAdmitted: [[DATE|03/02/2024]]   Discharged: [[DATE|03/07/2024]]\nAttending: Dr. [[PERSON|Kwame Asante-Boateng]], NPI [[NPI|1639284052]], TX license [[LICENSE_NUMBER|Q7291]]\nInsurance: Blue Harbor Health, member ID [[HEALTH_PLAN_ID|BHH-774-20-3318]]\nDx: community-acquired pneumonia, resolved. Follow-up with PCP Dr. [[PERSON|Lindqvist]] in 7–10 days. Daughter ([[PERSON|Celeste]]) can be reached at [[PHONE|956-271-4480]]."),
    ("heldout", "clinical", "Arztbrief – Entlassung\nSehr geehrte Frau Kollegin Dr. [[PERSON|Obermaier]],\nwir berichten über Ihren Patienten Herrn [[PERSON|Dragan Milosavljević]], geb. [[DATE_OF_BIRTH|21.09.1958]], Patienten-Nr. [[MEDICAL_RECORD_NUMBER|2024-117384]], wohnhaft [[ADDRESS|Kastanienallee 8, 04229 Leipzig]], der sich vom [[DATE|11.01.2024]] bis [[DATE|19.01.2024]] in unserer stationären Behandlung befand.\nVersichertennummer: [[HEALTH_PLAN_ID|K482917365]] (AOK Plus)\nDiagnosen: Hypertensive Krise, Diabetes mellitus Typ 2.\nMit freundlichen kollegialen Grüßen\nPD Dr. med. [[PERSON|Friederike Haas-Oltmanns]]"),
    ("tuned", "code", "# settings/prod.py  -- please tell me why boto3 says the signature doesn't match\nAWS_ACCESS_KEY_ID = \"[[AWS_ACCESS_KEY|AKIAQZWNL52XDHPOHKMS]]\"\nAWS_SECRET_ACCESS_KEY = \"[[API_KEY|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]]\"\nAWS_REGION = \"eu-central-1\"\nDATABASE_URL = \"postgres://app:[[API_KEY|Wq7!rT2pLm9z]]@db.internal:5432/orders\"\nGH_PAT = \"[[GITHUB_TOKEN|ghp_pvpKSRCjf6AYJwFQK3cEUfKwpQlMqOPqZ6fX]]\"\nSLACK_TOKEN = \"[[SLACK_TOKEN|xoxb-4417209385-6620138457291-Tq8vLm2XzR7pWc4KbN1hYs6J]]\"\nADMIN_EMAIL = \"[[EMAIL|jelena.markovic@fernhollow.io]]\""),
    ("heldout", "code", "Our CI broke after I rotated tokens, here's the .env (redact before sharing pls):\nGITHUB_TOKEN=[[GITHUB_TOKEN|ghp_P235EULBpmZ1k9Y1YNVby7Rh46Isc8iwtXEx]]\nSLACK_BOT_TOKEN=[[SLACK_TOKEN|xoxb-5829174630-7719024486153-QzV8mK2rT4nWpL6yHcX1bJ9d]]\nSTRIPE_SECRET_KEY=[[API_KEY|sk_live_51Mx9QaL2vTz7Rk4Wp8Nc3Hy6Bd0Fs5Ju1Ge]]\nDEPLOY_KEY=\"[[PRIVATE_KEY|-----BEGIN OPENSSH PRIVATE KEY-----\\nIkE6ZQXtvySd+1ycyMHDkJpbTiMyXhpTNSYHBsid5oiq0jWMyieYHXn/cRiiW1shulO2fke9vflMtj9Sk5one7nQYin1xDHbmn9eBcf4Wll51BUL3nLa7KbqGuwwWyI0\\n-----END OPENSSH PRIVATE KEY-----]]\"\nSENTRY_ENV=production\nMAINTAINER=[[PERSON|Oluwaseun Adebayo-Clarke]] <[[EMAIL|seun.ac@wrenbyte.dev]]>"),
    ("tuned", "log", "2024-05-02T14:03:11.482Z INFO  auth.login success user=kpetrakis email=[[EMAIL|konstantina.petrakis@meridianlabs.co]] ip=[[IP_ADDRESS|84.213.47.190]] ua=\"Mozilla/5.0\"\n2024-05-02T14:03:12.007Z DEBUG session.issue sub=user_88213 token=[[JWT|eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzg4MjEzIiwiaWF0IjoxNzE0NjU4NTkyLCJleHAiOjE3MTQ2NjIxOTJ9.oTDjdech6sW4fN05vDUsno0wSrX4OprDAeImu-9TlZQ]]\n2024-05-02T14:03:40.915Z WARN  rate_limit ip=[[IP_ADDRESS|84.213.47.190]] path=/api/v2/orders status=429"),
    ("heldout", "log", "Traceback (most recent call last):\n  File \"/srv/billing/charge.py\", line 88, in charge_customer\n    resp = gateway.charge(card=\"[[CREDIT_CARD|5304705455869723]]\", amount=4999, currency=\"USD\")\n  File \"/srv/billing/gateway.py\", line 141, in charge\n    raise DeclinedError(f\"declined for {customer}\")\nbilling.gateway.DeclinedError: declined for Customer(name='[[PERSON|Ignatius Farrow-Mbeki]]', email='[[EMAIL|ifarrow@lumencrest.net]]', phone='[[PHONE|+1 312 604 9937]]', ip='[[IP_ADDRESS|73.158.22.204]]')"),
    ("tuned", "pii_free", "Hinweis zur Fahrplanänderung ab 15. Dezember 2024\nAuf der Linie RE 7 entfallen werktags die Fahrten um 05:12 und 23:48 Uhr. Grund sind Bauarbeiten zwischen Hamm und Münster, die gemäß § 3.2.1.4 der Betriebsrichtlinie angekündigt werden müssen.\nDas Deutschlandticket kostet weiterhin 49,00 € pro Monat. Fahrräder werden bis 9:00 Uhr nicht befördert.\nBitte beachten Sie: Ersatzbusse halten an der Haltestelle Bahnhofstraße, nicht am Hauptbahnhof.\nWeitere Informationen finden Sie in der App unter Version 24.11.3."),
    ("heldout", "pii_free", "Notice de montage – étagère modulaire ORSA 80\nContenu : 4 montants de 1 800 mm, 12 tablettes, 48 vis M6 × 16.\nCouple de serrage conseillé : 4,5 N·m. Charge maximale par tablette : 35 kg.\nNe pas nettoyer avec de l'acide chlorhydrique (HCl) ni de l'eau de Javel (NaClO).\nRéférence du guide complet : ISBN 978-2-07-036822-8, édition de mars 2023.\nPrix public conseillé : 149,90 € TTC. Fabriqué en Suède, assemblé en France."),
    ("tuned", "chat", "[10:14] [[PERSON|Lucía Barrionuevo]]: oye, ¿me pasas la dirección para el paquete?\n[10:15] [[PERSON|Tomás Echeverría Ugarte]]: claro, [[ADDRESS|Calle del Pez Volador 41, 3º B, 28007 Madrid]]\n[10:15] [[PERSON|Tomás Echeverría Ugarte]]: si no estoy, llama a mi hermana [[PERSON|Itziar]] al [[PHONE|612 48 93 07]]\n[10:16] [[PERSON|Lucía Barrionuevo]]: perfecto, y mi fijo es [[PHONE|91 544 27 18]] por si acaso\n[10:17] [[PERSON|Tomás Echeverría Ugarte]]: 👍"),
    ("heldout", "chat", "Cliente: Oi, boa tarde! Meu pedido não chegou ainda\nAtendente ([[PERSON|Rafaela]]): Boa tarde! Pode me informar o nome completo e o e-mail do cadastro?\nCliente: [[PERSON|Joaquim Evaristo Nogueira Batista]], [[EMAIL|joaquim.nbatista@uol.com.br]]\nAtendente ([[PERSON|Rafaela]]): Obrigada, [[PERSON|Joaquim]]. O endereço de entrega é [[ADDRESS|Rua Doutor Arnaldo Pimenta, 1187, apto 52 - Vila Mariana, São Paulo - SP, 04117-030]]?\nCliente: Isso. Meu celular é [[PHONE|(11) 98743-2265]] se o entregador precisar"),
    ("tuned", "finance", "Hi, I need help writing a dispute letter to my bank. Details:\n- Cardholder: [[PERSON|Desmond Achterberg]]\n- Card: [[CREDIT_CARD|4222 6513 2526 1893]] (Visa debit)\n- Checking account [[BANK_ACCOUNT|004817265593]], routing [[ROUTING_NUMBER|322271627]]\n- Charge: $1,284.00 on 04/09/2024 from \"TRVLX*BOOKINGS\" which I never authorized\n- Phone on file: [[PHONE|(503) 771-0942]]\nPlease keep it formal and under 200 words."),
    ("heldout", "finance", "Wire instructions for the deposit on the flat (forwarded from my landlord, is this legit?):\nBeneficiary: [[PERSON|Aurelia Costa-Whitmore]]\nIBAN: [[IBAN|GB28 NWBK 4099 0121 7028 82]]\nBIC: NWBKGB2L\nReference: FLAT 3 DEPOSIT\nIf you have questions, call [[PERSON|Aurelia]] on [[PHONE|+44 7700 918 264]] or email [[EMAIL|a.costawhitmore@btinternet.com]]"),
    ("tuned", "hr", "New hire checklist – Warehouse, Reno site\nName: [[PERSON|Tavita Faleolo]]\nStart date: Monday\nDOB: [[DATE_OF_BIRTH|1992-08-30]]\nSSN: [[US_SSN|529-71-4086]]\nHome address: [[ADDRESS|1450 Sagebrush Loop, Apt 12, Sparks, NV 89436]]\nNevada DL: [[US_DRIVER_LICENSE|1308472615]]\nDirect deposit: acct [[BANK_ACCOUNT|3301847726]], routing [[ROUTING_NUMBER|264073912]]\nEmergency contact: [[PERSON|Losa Faleolo]] (mother), [[PHONE|775-219-6634]]\nI-9 docs verified by HR rep [[PERSON|Corinne Delacroix-Ames]]."),
    ("heldout", "hr", "Payroll setup note for contractor [[PERSON|Ngozi Umeh-Halvorsen]]:\nITIN [[US_ITIN|912-78-4521]] (no SSN yet), US passport [[US_PASSPORT|568214973]], born [[DATE_OF_BIRTH|March 5, 1985]].\nSpouse for the tax form: [[PERSON|Lars Halvorsen]], SSN [[US_SSN|401-62-8873]].\nMailing address: [[ADDRESS|88 Quarry Hill Rd, Montpelier, VT 05602]]\nDirect deposit: Green Mountain Credit Union, routing [[ROUTING_NUMBER|211691185]], account [[BANK_ACCOUNT|7730098124]]\nSend the W-8/W-9 packet to [[EMAIL|ngozi.uh@protonmail.com]]."),
    ("tuned", "pii_free", "Why does this query return duplicates?\n\nSELECT o.order_id, o.invoice_no, SUM(li.qty * li.unit_price) AS total\nFROM orders o\nJOIN line_items li ON li.order_id = o.order_id\nLEFT JOIN shipments s ON s.order_id = o.order_id\nWHERE o.status IN ('SHIPPED', 'DELIVERED')\n  AND o.created_at >= '2024-01-01'\nGROUP BY o.order_id, o.invoice_no\nHAVING SUM(li.qty) > 10;\n\nExample row: 5518302 | INV-2024-004417 | 1932.50 — it shows up three times. Running PostgreSQL 15.6."),
    ("heldout", "pii_free", "-- migration 0087_add_index.sql (flyway 9.22.3)\nALTER TABLE inventory ADD COLUMN warehouse_code CHAR(3) NOT NULL DEFAULT 'AMS';\nCREATE INDEX CONCURRENTLY idx_inventory_sku ON inventory (sku, warehouse_code);\nUPDATE inventory SET warehouse_code = 'LIS' WHERE region = 'Iberia';\n-- Tested against MySQL 8.0.36 and MariaDB 10.11.7; rollback in 0087_down.sql\n-- Build 3e7b91f0c2, ticket OPS-4412, expected lock time < 200 ms on 12 million rows."),
    ("tuned", "travel", "Gentile Sig.ra [[PERSON|Ferraresi]],\nconfermiamo la sua prenotazione presso l'Albergo Belvedere di Bellagio per 2 adulti, dal 12 al 16 agosto.\nOspiti: [[PERSON|Benedetta Ferraresi]] (nata il [[DATE_OF_BIRTH|27/04/1979]]) e [[PERSON|Gianmarco Pellizzari]]\nRecapito: [[PHONE|+39 347 218 6603]] · [[EMAIL|b.ferraresi@libero.it]]\nGaranzia con carta Mastercard [[CREDIT_CARD|5168 9995 4848 0268]], scad. 09/27\nIndirizzo di fatturazione: [[ADDRESS|Via dei Mille 14, 40121 Bologna BO]]\nCordiali saluti, Reception"),
    ("heldout", "travel", "Boekingsbevestiging – Veerdienst Harlingen–Terschelling\nReizigers:\n1. [[PERSON|Maarten van der Velde-Jansma]], geb. [[DATE_OF_BIRTH|09-02-1983]]\n2. [[PERSON|Sanne de Wit-Boukema]], geb. [[DATE_OF_BIRTH|30-11-1985]]\nVoertuig: kenteken [[VEHICLE_ID|52-XTP-7]]\nContact: [[PHONE|+31 6 41873092]], [[EMAIL|m.vandervelde@ziggo.nl]]\nFactuuradres: [[ADDRESS|Oosterkade 112, 8861 AT Harlingen]]\nVertrek zaterdag 07:45, aanwezig uiterlijk 45 minuten vóór vertrek."),
    ("tuned", "support", "Ticket #448213 – phone stuck in boot loop after update\nCustomer: [[PERSON|Haruto Bellingham]]\nEmail: [[EMAIL|haruto.bellingham@fastmail.com]] | Callback: [[PHONE|+1 (647) 882-3016]]\nDevice: Pixel-class handset, IMEI [[DEVICE_ID|358472097923337]], serial [[DEVICE_ID|R58N72KQ4ZX]]\nWi-Fi MAC: [[DEVICE_ID|3C:A6:F6:19:7E:D2]]\nSteps tried: safe mode, cache wipe. Customer says firmware 14.2.0 (build UP1A.231005.007) installed overnight.\nPlease draft a reply offering a replacement under warranty."),
    ("heldout", "support", "Support case 2024-0917-55 (router)\nFrom: [[PERSON|Wojciech Hallorann-Pike]] <[[EMAIL|w.hallorannpike@gmail.com]]>\n\"Since the 3.4.1 firmware my router keeps dropping. Public IP is [[IP_ADDRESS|98.47.203.116]] and the box's serial is [[DEVICE_ID|TPL-A7-2241908836]]. Also my son's laptop (MAC [[DEVICE_ID|8C-85-90-4B-2E-11]]) never gets a lease. I'm at [[ADDRESS|41 Birchwood Crescent, Guelph, ON N1H 6P3]] if you need to send a tech. Phone [[PHONE|519-830-4472]].\"\nOriginal order: 113-7742019-5523184"),
    ("tuned", "mail", "Przetłumacz na angielski, proszę:\n\nSzanowna Pani [[PERSON|Agnieszko]],\nw nawiązaniu do rozmowy telefonicznej przesyłam dane do umowy najmu. Najemca: [[PERSON|Bartłomiej Szczepankiewicz]], zam. [[ADDRESS|ul. Mickiewicza 18/4, 30-059 Kraków]]. Numer telefonu: [[PHONE|+48 602 381 945]]. Czynsz proszę przelewać na rachunek [[IBAN|PL04 7712 9878 0289 6703 1238 1956]].\nZ poważaniem\n[[PERSON|Grażyna Wróblewska-Kot]]\nBiuro Nieruchomości \"Pod Wawelem\""),
    ("heldout", "mail", "Dobrý den, pane [[PERSON|Vondráčku]],\nposílám údaje pro vrácení přeplatku. Jméno: [[PERSON|Květoslava Hrubá]], trvalé bydliště [[ADDRESS|Na Slupi 1532/9, 128 00 Praha 2]]. Číslo účtu ve formátu IBAN: [[IBAN|CZ81 5309 1529 2215 3063 8368]].\nV případě dotazů volejte na [[PHONE|+420 731 468 209]] nebo pište na [[EMAIL|kvetahruba@seznam.cz]].\nS pozdravem\n[[PERSON|Květoslava Hrubá]]\n\n(Can you check the Czech grammar in this?)"),
    ("tuned", "pii_free", "製品ご利用上の注意\n本機（型番 KX-7720B）は、電源電圧 AC100V・50/60Hz でご使用ください。\nファームウェアは Ver.3.14.2 以降にアップデートしてください。更新には約 12 分かかります。\n東京・大阪の各サービスセンターでは、2024年4月1日から受付時間を 9:00〜17:30 に変更しました。\n消費電力：最大 1,250 W、質量：約 4.8 kg。\nエラーコード E-503 が表示された場合は、電源プラグを抜いて 30 秒待ってから再度差し込んでください。"),
    ("heldout", "pii_free", "系统维护公告\n为提升服务稳定性，我们将于 2024年6月15日 02:00 至 06:00（北京时间）对支付网关进行升级，版本由 v2.8.11 升级至 v3.0.0。\n维护期间，订单号以 DD2024 开头的退款申请将顺延处理，接口可能返回 HTTP 503。\n本次升级涉及上海、深圳两个数据中心，构建哈希为 7c1e4b9a02。\n如有疑问，请查阅帮助中心第 4.3.2 节。给您带来的不便，敬请谅解。"),
    ("tuned", "legal", "SERVICES AGREEMENT\nThis Agreement is entered into by and between Northlake Fabrication LLC, a Michigan limited liability company (\"Provider\"), and [[PERSON|Evangeline Marchetti-Osei]], an individual residing at [[ADDRESS|3017 Cobblestone Ridge Dr, Ann Arbor, MI 48105]] (\"Client\"), taxpayer identification number (ITIN) [[US_ITIN|947-81-3306]].\n1.1 Notices under Section 12.4 shall be sent to the Client at the address above or by email to [[EMAIL|e.marchetti.osei@outlook.com]].\n1.2 The Provider's signatory is [[PERSON|Bernard Kowalczyk-Tate]], Managing Member.\nIN WITNESS WHEREOF, the parties have executed this Agreement as of the date last signed below."),
    ("heldout", "legal", "CONTRATO DE ARRENDAMIENTO DE VIVIENDA\nEn Sevilla, a 3 de junio de 2024.\nREUNIDOS\nDe una parte, D.ª [[PERSON|Rocío Valderrama de la Fuente]], mayor de edad, nacida el [[DATE_OF_BIRTH|18/02/1971]], con domicilio en [[ADDRESS|Calle Feria 72, 2.º izquierda, 41003 Sevilla]], en calidad de ARRENDADORA.\nDe otra parte, D. [[PERSON|Álvaro Ibarzábal Quiroga]], con correo electrónico [[EMAIL|alvaro.ibarzabal@telefonica.net]], en calidad de ARRENDATARIO.\nLa renta se abonará en la cuenta [[IBAN|ES05 1665 5115 2154 5169 0210]] dentro de los cinco primeros días de cada mes."),
    ("tuned", "prompt", "Kan du skriva om det här så att det låter mer professionellt?\n\n\"Hej [[PERSON|Göran]]! Jag heter [[PERSON|Linnéa Åkesson-Berglund]] och flyttade nyss till [[ADDRESS|Storgatan 14 B, 903 26 Umeå]]. Min granne [[PERSON|Yusuf Demirci]] sa att du säljer ved. Ring mig på [[PHONE|070-318 45 92]] eller maila [[EMAIL|linnea.akesson@telia.se]]. Mvh [[PERSON|Linnéa]]\""),
    ("heldout", "prompt", "Oversæt venligst til engelsk:\n\n\"Kære [[PERSON|Mette]],\ntak for i går. Som aftalt sender jeg kontaktoplysninger på min far, [[PERSON|Bjarne Kjærsgaard Holm]], som gerne vil leje sommerhuset. Han bor på [[ADDRESS|Vestergade 31, 2. tv., 8000 Aarhus C]] og kan træffes på [[PHONE|+45 28 61 94 37]] eller [[EMAIL|bjarne.kholm@mail.dk]].\nKærlig hilsen\n[[PERSON|Signe]]\""),
    ("tuned", "form", "Can you dedupe this CRM export and tell me which rows are the same person?\n\nid,full_name,email,phone,city\n1041,[[PERSON|Rosalind Achebe]],[[EMAIL|rosalind.achebe@kestrelmail.com]],[[PHONE|+1-202-618-4471]],Washington\n1042,\"[[PERSON|Achebe, Rosalind]]\",[[EMAIL|r.achebe@kestrelmail.com]],[[PHONE|(202) 618-4471]],Washington\n1043,[[PERSON|Marek Dvořák]],[[EMAIL|marek.dvorak@quillnet.cz]],[[PHONE|+420 604 118 372]],Brno\n1044,[[PERSON|Siobhán Ní Fhaoláin]],[[EMAIL|siobhan.nf@eircom.net]],[[PHONE|+353 87 412 6690]],Galway\n1045,[[PERSON|Marek Dvorak]],[[EMAIL|mdvorak@quillnet.cz]],[[PHONE|604118372]],Brno"),
    ("heldout", "form", "{\"name\": \"[[PERSON|Thandiwe Mokoena]]\", \"email\": \"[[EMAIL|thandi.mokoena@sunbirdpost.co.za]]\", \"phone\": \"[[PHONE|+27 82 514 3390]]\", \"dob\": \"[[DATE_OF_BIRTH|1990-12-04]]\"}\n{\"name\": \"[[PERSON|Henrik Aasgaard]]\", \"email\": \"[[EMAIL|henrik.aasgaard@fjordline.no]]\", \"phone\": \"[[PHONE|+47 915 28 406]]\", \"dob\": \"[[DATE_OF_BIRTH|1976-06-21]]\"}\n{\"name\": \"[[PERSON|Mei-Ling Ou-Yang]]\", \"email\": \"[[EMAIL|meiling.ouyang@pineharbor.com]]\", \"phone\": \"[[PHONE|+1 604 338 2917]]\", \"dob\": \"[[DATE_OF_BIRTH|2001-01-15]]\"}\nConvert these JSON lines to a markdown table please."),
    ("tuned", "pii_free", "Resumen de la normativa aplicable\nSegún el artículo 14.2 del Real Decreto 1620/2007, las aguas regeneradas destinadas a riego agrícola deben cumplir un límite de 10 UFC/100 mL de E. coli.\nLa Comisión Europea publicó la revisión el 26 de mayo de 2020 y los Estados miembros disponían de tres años para adaptarla.\nEn España, Murcia y Valencia concentran la mayor parte del volumen reutilizado, con unos 400 hm³ anuales.\nEl coste medio de tratamiento terciario ronda los 0,12 €/m³."),
    ("heldout", "pii_free", "Il Salone del Libro di Torino si è svolto dal 9 al 13 maggio 2024 al Lingotto Fiere.\nI biglietti costavano 15 € (ridotto 11 €) e l'ingresso era gratuito per i minori di 18 anni.\nTra le novità in catalogo, la nuova edizione della guida ai vini del Piemonte (ISBN 978-88-06-25417-3, 512 pagine) e un atlante dei fiumi italiani.\nLo stand n. 47/B del padiglione 2 ospitava le case editrici indipendenti della Sardegna.\nSecondo gli organizzatori, l'affluenza è cresciuta del 3,7 % rispetto al 2023."),
    ("tuned", "clinical", "Compte rendu de consultation – Cardiologie\nPatient : M. [[PERSON|Étienne Rakotomalala]], né le [[DATE_OF_BIRTH|05/06/1949]]\nN° de dossier : IPP [[MEDICAL_RECORD_NUMBER|7719-40283]]\nMutuelle : Harmonie, n° adhérent [[HEALTH_PLAN_ID|0047718265]]\nAdressé par le Dr [[PERSON|Solène Vasseur]] (médecin traitant), tél. cabinet [[PHONE|02 98 44 61 37]]\nMotif : palpitations depuis trois semaines. ECG : fibrillation auriculaire à 112 bpm.\nConduite à tenir : anticoagulation, contrôle dans un mois. Le patient peut être joint au [[PHONE|06 71 29 84 15]]."),
    ("heldout", "clinical", "INFORME DE ALTA – Servicio de Traumatología\nPaciente: [[PERSON|Guadalupe Etxeberria Montalbán]]\nNHC: [[MEDICAL_RECORD_NUMBER|300481726]]   Fecha de nacimiento: [[DATE_OF_BIRTH|22/10/1966]]\nFecha de ingreso: [[DATE|08/04/2024]]   Fecha de alta: [[DATE|12/04/2024]]\nTarjeta sanitaria (TSI): [[HEALTH_PLAN_ID|ETMG661022319015]]\nDiagnóstico: fractura de radio distal derecho, tratada con osteosíntesis.\nMédico responsable: Dra. [[PERSON|Inmaculada Torrecillas]]\nContacto familiar: [[PERSON|Iñaki]] (hijo), [[PHONE|688 214 907]]"),
    ("tuned", "chat", "[[PERSON|राहुल]]: भाई, कल की पार्टी के लिए पता भेज दो\n[[PERSON|अनन्या]]: [[ADDRESS|फ्लैट 304, साई कृपा अपार्टमेंट, सेक्टर 21, खारघर, नवी मुंबई 410210]]\n[[PERSON|राहुल]]: ठीक है। अगर रास्ता न मिले तो किसको फ़ोन करूँ?\n[[PERSON|अनन्या]]: मेरे भाई [[PERSON|देवांश]] को, [[PHONE|+91 98204 57316]]\n[[PERSON|राहुल]]: और तुम्हारा नंबर?\n[[PERSON|अनन्या]]: [[PHONE|99674 21508]], पर मैं शाम तक मीटिंग में हूँ"),
    ("heldout", "chat", "[[PERSON|سارة]]: مرحبا يا [[PERSON|خالد]]، هل وصلك عنوان بريدي الجديد؟\n[[PERSON|خالد]]: لا، أرسليه من فضلك\n[[PERSON|سارة]]: [[EMAIL|sara.alhashimi@gmail.com]] وأيضاً رقم هاتفي تغيّر، الجديد هو [[PHONE|+971 50 418 2763]]\n[[PERSON|خالد]]: تمام. وعنوان المكتب؟\n[[PERSON|سارة]]: [[ADDRESS|مكتب 1207، برج الريم، شارع الشيخ زايد، دبي]]\n[[PERSON|خالد]]: شكراً، سأخبر الأستاذ [[PERSON|يوسف الكبيسي]] بذلك"),
    ("tuned", "code", "Is it safe to commit this? It's from our test fixture:\n{\n  \"type\": \"service_account\",\n  \"project_id\": \"orchard-metrics-prod\",\n  \"private_key\": \"[[PRIVATE_KEY|-----BEGIN PRIVATE KEY-----\\nECqF9bpbbhZkxwK3RJjASp6gJbW2ApVhfgl0rK3eclLYS2Le/hz+lJq1OV/ABK6OiahmixlX0Epuz+M7UeNhF9xxlTRQBLnOxwYtCh0dvHQrP8PiKZA921LdTMzu8mXv\\n-----END PRIVATE KEY-----]]\\n\",\n  \"token_uri\": \"https://oauth2.googleapis.com/token\"\n}\nAnd the fixture request header: Authorization: Bearer [[JWT|eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1aWQiOiJmM2E5MWMiLCJlbWFpbF92ZXJpZmllZCI6dHJ1ZSwiaWF0IjoxNzE1MDAwMDAwfQ.oVWlygXze-pCO6kDuLMk7RI4mP-zw40dGv_5tbivuIs]]\nProject owner: [[PERSON|Fenella Ashcombe]] ([[EMAIL|fenella.ashcombe@orchardmetrics.io]])"),
    ("heldout", "code", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: reporting-secrets\n  annotations:\n    owner: \"[[PERSON|Radomir Petkov-Lindahl]] <[[EMAIL|radomir.pl@tessellate.app]]>\"\nstringData:\n  AWS_ACCESS_KEY_ID: [[AWS_ACCESS_KEY|AKIAULR5IVP3KXQ5RHXU]]\n  AWS_SECRET_ACCESS_KEY: [[API_KEY|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]]\n  SLACK_USER_TOKEN: [[SLACK_TOKEN|xoxp-3318204756-4402917365-6610283947-a9f4c27e1b8d30f5e6c2b7a1d9e04f38]]\n  OPENAI_API_KEY: [[API_KEY|sk-proj-Hq7Tz2Lm9Xv4Rc8Nw1Bp6Jd3Kf0Sy5Ga]]\n  INTERNAL_SERVICE_JWT: [[JWT|eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtcmVwb3J0aW5nIiwiYXVkIjoiaW50ZXJuYWwiLCJpYXQiOjE3MTcwMDAwMDB9.e5A4OHwFJoy5ultJzFmPj8eRZulzJxS291VF4fcboBQ]]\n# kubectl apply fails with 'data must be base64' - what am I doing wrong?"),
    ("tuned", "pii_free", "Nieuwe regels fietsenstalling station Utrecht Centraal\nVanaf 1 juli 2024 is de eerste 24 uur gratis; daarna betaal je € 1,35 per dag.\nFietsen die langer dan 28 dagen staan, worden verwijderd en naar het depot in Nieuwegein gebracht.\nDe stalling telt 12.500 plekken verdeeld over drie verdiepingen, open van 05:00 tot 01:00.\nIn artikel 5.1.3 van de huisregels staat dat bakfietsen alleen op niveau -1 mogen.\nStoringen aan de poortjes (foutcode 401 of 403) kun je melden bij de servicebalie."),
    ("heldout", "pii_free", "Informacja o aktualizacji\nWersja 5.3.0 aplikacji Kasa Mobilna jest dostępna od 12 marca 2024 r.\nZmiany: obsługa Androida 14, poprawka błędu HTTP 500 przy eksporcie raportu, nowy format faktury FV/2024/03/0187.\nMinimalne wymagania: 2 GB RAM, 150 MB wolnego miejsca.\nAplikacja jest testowana w Warszawie, Gdańsku i Wrocławiu na terminalach z jądrem 5.15.0.91.\nZgodnie z art. 106e ust. 1 pkt 3 ustawy o VAT faktura musi zawierać datę wystawienia."),
    ("tuned", "support", "Здравствуйте! Пишу по заявке № 58213-Р.\nМеня зовут [[PERSON|Кольцова Дарья Всеволодовна]], договор на интернет оформлен на моего мужа, [[PERSON|Кольцова Игоря Матвеевича]].\nАдрес подключения: [[ADDRESS|123001, г. Москва, ул. Садовая-Кудринская, д. 24, кв. 117]]\nКонтактный телефон: [[PHONE|+7 916 482-37-05]], почта [[EMAIL|d.koltsova@yandex.ru]]\nЛицевой счёт: [[ACCOUNT_NUMBER|40817-220-5531]]\nАбонентскую плату списывают с карты [[CREDIT_CARD|2200 2724 4227 9252]].\nС 3 мая роутер не видит сеть, индикатор WAN мигает красным."),
    ("heldout", "support", "Доброго дня! Замовлення не доставили.\nОтримувач: [[PERSON|Гнатюк Оксана Ярославівна]]\nАдреса: [[ADDRESS|вул. Городоцька, 156, кв. 42, м. Львів, 79022]]\nТелефон: [[PHONE|+380 67 318 25 94]]\nE-mail: [[EMAIL|oksana.hnatiuk@ukr.net]]\nНомер картки, з якої списали кошти: [[CREDIT_CARD|4958 2719 2442 6860]]\nПрошу повернути гроші або повідомити нову дату доставки."),
    ("tuned", "finance", "Merhaba, aşağıdaki havale bilgisini kontrol eder misin?\nAlıcı: [[PERSON|Elif Nur Karaosmanoğlu]]\nIBAN: [[IBAN|TR58 3336 1031 5403 6815 1791 06]]\nAçıklama: Mart ayı kira bedeli\nTutar: 18.500,00 TL\nGönderen: [[PERSON|Mehmet Ali Yıldırımtürk]], tel. [[PHONE|0532 417 82 96]]\nAdres: [[ADDRESS|Bağdat Cad. No: 241 D: 7, 34728 Kadıköy/İstanbul]]"),
    ("heldout", "finance", "Καλησπέρα σας,\nθα ήθελα να αμφισβητήσω μια χρέωση στην κάρτα μου.\nΚάτοχος: [[PERSON|Σταυρούλα Παπαδημητρίου-Λάσκαρη]]\nΑριθμός κάρτας: [[CREDIT_CARD|5575 3482 1787 1315]]\nΑριθμός λογαριασμού: [[BANK_ACCOUNT|0026.0174.52.0201733408]]\nΗ χρέωση των 249,00 € από «ELECTRO-STORE ONLINE» στις 14/05/2024 δεν έγινε από εμένα.\nΤηλέφωνο επικοινωνίας: [[PHONE|694 712 3380]]\nΔιεύθυνση: [[ADDRESS|Λεωφόρος Αλεξάνδρας 118, 114 72 Αθήνα]]"),
    ("tuned", "hr", "Personalstammblatt – bitte in Stichpunkten zusammenfassen\nMitarbeiterin: [[PERSON|Zeynep Öztürk-Lindemann]]\nGeburtsdatum: [[DATE_OF_BIRTH|03.02.1990]]\nAnschrift: [[ADDRESS|Hermann-Löns-Straße 7, 30173 Hannover]]\nPrivat-Tel.: [[PHONE|0511 8942 3317]]\nBankverbindung: IBAN [[IBAN|DE68 5001 0090 6614 2481 34]]\nDienstwagen: Kennzeichen [[VEHICLE_ID|H-ZÖ 2217]]\nNotfallkontakt: [[PERSON|Cem Öztürk]], [[PHONE|0176 24839105]]"),
    ("heldout", "hr", "Hei! Kan du lage en kort velkomst-e-post basert på dette?\nNy ansatt: [[PERSON|Ingvild Sæther Rønningen]]\nFødselsdato: [[DATE_OF_BIRTH|17.09.1995]]\nAdresse: [[ADDRESS|Thereses gate 44B, 0354 Oslo]]\nMobil: [[PHONE|+47 934 18 602]]\nKontonummer for lønn: [[BANK_ACCOUNT|3579 57 78389]]\nIBAN (for utenlandske overføringer): [[IBAN|NO12 3579 5778 389]]\nNærmeste leder: [[PERSON|Øystein Haugland]]"),
    ("tuned", "pii_free", "Lab prep note – buffer for the Tuesday practical\nDissolve 12.11 g of Tris base (C4H11NO3) in 800 mL of deionised water, adjust to pH 8.0 with concentrated HCl, then make up to 1.0 L.\nAutoclave at 121 °C for 20 min. Store at 4 °C for up to 6 months.\nSee the lab manual, 4th ed., ISBN 978-1-936113-42-2, protocol A1.3.\nReagent lot numbers: TRIS-2403-117, HCl-37-0921. Catalogue price £38.50 per 500 g."),
    ("heldout", "pii_free", "Shipping status update\nOrder #A-20240611-8831 left the Memphis hub at 06:14 CDT and is due in Phoenix on Thursday.\nTracking events: 200 OK (label created), 202 Accepted (picked up), 409 Conflict (address validation retried).\nPackage: 3 cartons, 14.2 lb total, 24 × 18 × 12 in.\nInvoice INV-55721-B for $312.40 was issued on 2024-06-11; payment terms Net 30.\nCarriers cannot deliver to P.O. boxes in Alaska or Hawaii under the standard service level."),
    ("tuned", "mail", "Please extract the contact details from this signature into JSON:\n\n--\nBest regards,\n[[PERSON|Annika Vuorinen-Shaw]]\nSenior Procurement Lead | Halberd Marine Systems\nT: [[PHONE|+44 20 7946 1183]] | M: [[PHONE|+44 7911 302 558]]\nF: [[FAX|+44 20 7946 1190]]\n[[EMAIL|annika.vuorinenshaw@halberd-marine.co.uk]]\n[[ADDRESS|Unit 6, Riverside Works, 42 Wharf Road, London N1 7GR]]\n[[URL|https://www.linkedin.com/in/annika-vuorinen-shaw-4b81a2]]"),
    ("heldout", "mail", "Tidy up this email footer so it fits on two lines:\n\nKind regards,\nDr. [[PERSON|Rashida Bellweather-Nkemelu]], MD\nAttending Oncologist, Westbrook Oncology Group · NPI [[NPI|1528406196]] · NC license [[LICENSE_NUMBER|2019-01877]]\n[[ADDRESS|1200 Meridian Pkwy, Suite 310, Durham, NC 27713]]\nDirect: [[PHONE|919.406.2271 x 118]] · Fax: [[FAX|919.406.2299]]\n[[EMAIL|rashida.bn@westbrookonc.org]] · [[URL|calendly.com/rashida-bn/30min]]"),
    ("tuned", "travel", "Booking confirmation – PNR K7QX2M\nPassenger 1: [[PERSON|SHEPHERD-ALVAREZ/CORMAC]] MR, DOB [[DATE_OF_BIRTH|11MAR1978]], US passport [[US_PASSPORT|583920417]]\nPassenger 2: [[PERSON|SHEPHERD-ALVAREZ/INES]] MS, DOB [[DATE_OF_BIRTH|29JUL1981]]\nFrequent flyer: SkyMiles [[ACCOUNT_NUMBER|2297318840]]\nPaid with Visa [[CREDIT_CARD|4027 8488 7833 5200]]\nContact: [[PHONE|+1 720 894 3316]], [[EMAIL|cormac.sa@icloud.com]]\nSeattle (SEA) → Reykjavík (KEF), flight 1184, departs 16:40, seat 23C.\nCan you make me a packing checklist based on this itinerary?"),
    ("heldout", "travel", "Rental agreement RA-558120 (please check the damage clause)\nRenter: [[PERSON|Abernathy Oyelaran-Quist]]\nCalifornia DL: [[US_DRIVER_LICENSE|D4827163]]\nDOB: [[DATE_OF_BIRTH|07/14/1969]]\nRewards member no.: [[ACCOUNT_NUMBER|EC-5591-0273]]\nVehicle: 2022 Toyota Camry, plate [[VEHICLE_ID|8XKT417]], VIN [[VEHICLE_ID|4T1G11AK9NU603817]]\nPayment: Amex [[CREDIT_CARD|3772 217422 36505]]\nPhone: [[PHONE|(310) 557-2094]]\nPick-up: LAX, returns to SFO on Sunday."),
    ("tuned", "log", "[2024-04-22 09:31:07] INFO  회원가입 완료 user_id=u_77120 name=\"[[PERSON|윤서아]]\" phone=[[PHONE|010-4829-6613]] email=[[EMAIL|seoa.yoon@naver.com]]\n[2024-04-22 09:31:08] INFO  배송지 등록 addr=\"[[ADDRESS|03991 서울특별시 마포구 월드컵북로12길 34, 502호]]\"\n[2024-04-22 09:31:15] ERROR 본인인증 실패 ip=[[IP_ADDRESS|211.36.142.87]] reason=TIMEOUT\n위 로그에서 개인정보를 마스킹하는 정규식을 만들어 주세요."),
    ("heldout", "log", "2024-07-03 15:22:41 WARN payment.retry order=VN-448812 customer=\"[[PERSON|Nguyễn Thị Thanh Hương]]\" sdt=[[PHONE|+84 912 385 407]] email=[[EMAIL|huong.ntt@gmail.com]]\n2024-07-03 15:22:41 WARN payment.retry card=**** **** **** 4417 ip=[[IP_ADDRESS|14.232.118.65]]\n2024-07-03 15:22:44 INFO shipping.address_set addr=\"[[ADDRESS|Số 27 ngõ 85 Nguyễn Chí Thanh, phường Láng Hạ, quận Đống Đa, Hà Nội]]\"\nGiải thích giúp mình vì sao thanh toán bị thử lại nhiều lần?"),
    ("tuned", "pii_free", "Aviso aos utentes\nA partir de 1 de setembro de 2024, o passe Navegante Metropolitano mantém o preço de 40,00 € por mês.\nAs linhas Azul e Verde do Metro de Lisboa terão intervalos de 6 minutos entre as 07h00 e as 10h00.\nNos termos do artigo 12.º, n.º 3, do Regulamento de Transportes, os títulos ocasionais deixam de ser vendidos a bordo.\nObras na estação do Cais do Sodré decorrem até ao final de novembro; utilize a saída nascente.\nA aplicação foi atualizada para a versão 7.2.1 (compilação 20240812-b3)."),
    ("heldout", "pii_free", "Driftinformation\nPå grund av planerat underhåll är e-tjänsten för bygglov otillgänglig söndag 2024-09-08 kl. 06.00–10.00.\nUnder tiden returnerar API:et statuskod 503 och ärenden med diarienummer BN 2024/1187 och senare köas.\nKommunen rekommenderar Firefox 128 eller senare; Internet Explorer stöds inte längre.\nAvgiften för förhandsbesked är 8 400 kr enligt taxa 4.2.1, beslutad av Kommunfullmäktige.\nKontakta servicecenter via formuläret på webbplatsen om något är oklart."),
    ("tuned", "pii_free", "Huoltotiedote\nKaukolämpöverkossa tehdään korjaustöitä Tampereen Hervannassa 14.–16.10.2024 klo 8–16.\nKatkon aikana menoveden lämpötila laskee noin 65 °C:sta 45 °C:een.\nTyöt koskevat katuja Insinöörinkatu ja Opiskelijankatu; kiinteistöjen vesimittareita (DN 20) ei tarvitse lukea.\nTilausnumerot 2024-KL-0412 ja 2024-KL-0413 on siirretty seuraavalle viikolle.\nLisätietoja saat verkkopalvelusta, versio 3.9.0."),
    ("heldout", "pii_free", "서비스 점검 안내\n2024년 10월 20일(일) 01:00부터 05:00까지 결제 시스템 정기 점검이 진행됩니다.\n점검 시간 동안 주문번호 20241020-로 시작하는 건의 취소 요청은 점검 후 순차 처리됩니다.\n앱 버전 4.7.2 미만에서는 로그인 시 오류 코드 401이 표시될 수 있으니 업데이트해 주세요.\n부산, 대구 물류센터의 출고는 평소와 같이 진행됩니다.\n이용에 불편을 드려 죄송합니다."),
    ("tuned", "legal", "Bitte prüfen, ob dieser Absatz rechtlich sauber ist:\n\n§ 2 Mietsache und Parteien\n(1) Vermieter ist Herr [[PERSON|Konstantin Reinholz-Aydın]], geboren am [[DATE_OF_BIRTH|12.05.1968]], wohnhaft [[ADDRESS|Am Lerchenberg 3, 55127 Mainz]].\n(2) Mieterin ist Frau [[PERSON|Johanna Pfisterer]], erreichbar unter [[EMAIL|johanna.pfisterer@web.de]] bzw. [[PHONE|06131 4872 190]].\n(3) Mitvermietet wird der Stellplatz Nr. 14 für das Fahrzeug mit dem amtlichen Kennzeichen [[VEHICLE_ID|MZ-JP 418]].\n(4) Die Kaution ist auf das Konto IBAN [[IBAN|DE31 5505 0120 3689 9720 94]] zu überweisen."),
    ("heldout", "legal", "SCRITTURA PRIVATA DI COMODATO D'USO\nTra il sig. [[PERSON|Ottavio Scarpellini]], nato a Perugia il [[DATE_OF_BIRTH|30/01/1955]], residente in [[ADDRESS|Via Cesare Battisti 9, 06122 Perugia PG]] (comodante),\ne la sig.ra [[PERSON|Chiara Lo Verde]], nata il [[DATE_OF_BIRTH|08/08/1992]], telefono [[PHONE|328 559 0417]] (comodataria),\nsi conviene quanto segue:\nArt. 1 – Il comodante concede in uso gratuito l'immobile sito in [[ADDRESS|Via Cesare Battisti 9]].\nArt. 4 – Eventuali rimborsi spese saranno versati sull'IBAN [[IBAN|IT22 X018 0611 8138 2945 5701 648]].\nCosa significa esattamente l'art. 1803 c.c. citato in fondo?"),
    ("tuned", "prompt", "Tolong buatkan surat undangan rapat RT berdasarkan data ini:\nKetua RT: Bapak [[PERSON|Hendra Wijayakusuma]], HP [[PHONE|0812-3378-4106]]\nSekretaris: Ibu [[PERSON|Siti Rahmawati binti Abdul Ghani]], email [[EMAIL|siti.rahmawati88@yahoo.co.id]]\nTempat: rumah Pak [[PERSON|Hendra]], [[ADDRESS|Jl. Kenanga Raya No. 17, RT 03/RW 05, Kel. Cempaka Putih, Jakarta Pusat 10510]]\nKonfirmasi kehadiran lewat WA ke Ibu [[PERSON|Siti]] di [[PHONE|+62 857-1942-6630]]"),
    ("heldout", "prompt", "תתרגם בבקשה לאנגלית:\n\"שלום רב, שמי [[PERSON|נועה בן-דוד]] ואני פונה בעניין הדירה ב[[ADDRESS|רחוב הרצל 48, דירה 6, רחובות 7626410]]. בעל הדירה, מר [[PERSON|אברהם שטרנפלד]], ביקש שאצור קשר עם החברה. ניתן להשיג אותי בטלפון [[PHONE|052-748-3196]] או במייל [[EMAIL|noa.bendavid@walla.co.il]]. תודה!\""),
    ("tuned", "support", "Customer wrote in Chinese, please translate and draft a reply in English:\n\n您好，我叫[[PERSON|欧阳晓峰]]，上周在你们官网买的耳机一直连不上。订单号 CN20240517-3381。\n收货地址：[[ADDRESS|518057 广东省深圳市南山区科苑南路2666号3栋1502室]]\n手机：[[PHONE|+86 138 2741 6659]]，邮箱 [[EMAIL|ouyang.xf@163.com]]\n设备序列号：[[DEVICE_ID|SN-HX9-7730412258]]\n谢谢！"),
    ("heldout", "support", "以下の問い合わせを英語に要約してください。\n\nお世話になっております。[[PERSON|佐々木 莉子]]と申します。\n先月購入したタブレット（シリアル番号：[[DEVICE_ID|F9XK-20417-JP83]]、IMEI：[[DEVICE_ID|864510031746202]]）の画面が点灯しません。\n返送先：[[ADDRESS|〒603-8214 京都府京都市北区紫野下門前町25-3 ハイツ紫野201号室]]\n電話：[[PHONE|075-492-3817]]（平日 18時以降）／携帯：[[PHONE|090-6618-2047]]\nメール：[[EMAIL|riko.sasaki.kyoto@docomo.ne.jp]]\n保証書の名義は夫の[[PERSON|佐々木 悠真]]です。"),
    ROUND_5,
    # ---------------- round 5: a third author (2026-12-04), names and addresses first; tuned and held out ----------------
    # ------------------------------------------------------------------ tuned
    ("tuned", "prompt",
     "Can you rewrite this reference so it sounds less stiff? It's for [[PERSON|Siobhán Ní Bhriain]], who worked under me for three years "
     "as a site engineer, and I'd like to add that [[PERSON|Ciarán]] from accounts can vouch for her reliability too. Her email is [[EMAIL|siobhan.nibhriain@gmail.com]] if the recruiter wants it."),

    ("tuned", "mail",
     "Sehr geehrte Frau [[PERSON|Schäfer-Lindqvist]],\n\nanbei erhalten Sie meine Rechnung Nr. 2024-031 für die Renovierung des Badezimmers. "
     "Bitte überweisen Sie den Betrag bis zum Monatsende auf mein Konto, IBAN [[IBAN|DE82 7605 0101 0012 8734 65]]. "
     "Bei Rückfragen erreichen Sie mich unter [[PHONE|+49 911 4807 223]].\n\nMit freundlichen Grüßen\n[[PERSON|Matthias Bräuer]]\nFliesenlegermeister"),

    ("tuned", "pii_free",
     "The quarterly memo from Morgan Stanley and the opinion letter from Skadden, Arps both mention the Hamilton Street office lease. "
     "Can you summarize the main risks in three bullets and flag anything that conflicts with the Goldman Sachs term sheet?"),

    ("tuned", "form",
     "RENTAL APPLICATION\nApplicant: [[PERSON|Marcus T. Delacroix]]\nDate of birth: [[DATE_OF_BIRTH|04/17/1986]]\nSSN: [[US_SSN|412-68-3059]]\n"
     "Driver's license: [[US_DRIVER_LICENSE|D482-6619-0375]] (IL)\nCurrent address: [[ADDRESS|1147 W. Belmont Ave, Apt 2R, Chicago, IL 60657]]\n"
     "Phone: [[PHONE|(773) 555-0182]]\nEmail: [[EMAIL|mtdelacroix86@gmail.com]]\nReference: [[PERSON|Loretta Fairbanks]], previous landlord"),

    ("tuned", "chat",
     "[09:14] [[PERSON|Jess]]: did anyone get hold of the plumber?\n[09:15] [[PERSON|Tomás]]: yeah, [[PERSON|Kwame Asante]] said he can come thursday morning\n"
     "[09:15] [[PERSON|Jess]]: great, send him the gate code, it's the terrace at [[ADDRESS|42 Wattle Street, Ultimo NSW 2007]]\n"
     "[09:16] [[PERSON|Tomás]]: done. his mobile is [[PHONE|0412 887 305]] if you need it"),

    ("tuned", "clinical",
     "Paziente [[PERSON|Giuseppina Lo Russo]], cartella clinica n. [[MEDICAL_RECORD_NUMBER|2024/018733]], nata il [[DATE_OF_BIRTH|11/02/1941]], "
     "ricoverata il [[DATE|3 aprile 2024]] per scompenso cardiaco, tessera sanitaria [[HEALTH_PLAN_ID|80380001200412345678]]. Dimessa il [[DATE|9 aprile 2024]] in buone condizioni generali. "
     "Controllo ambulatoriale con la dott.ssa [[PERSON|Benedetta Sarti]] tra due settimane."),

    ("tuned", "ticket",
     "Ticket #88213 - Customer cannot log in after password reset. Account [[ACCOUNT_NUMBER|CUST-0093127]], registered email "
     "[[EMAIL|h.nakamura.design@gmail.com]]. Last successful login came from [[IP_ADDRESS|81.174.22.193]]; the failed attempts are from [[IP_ADDRESS|2001:db8:4f1a::7c2]]. "
     "[[PERSON|Haruto Nakamura]] asked for a call back on [[PHONE|+44 7700 900418]] after 5pm."),

    ("tuned", "pii_free",
     "Die Kanzlei Gleiss Lutz und die Deutsche Bank haben die Rahmenvereinbarung am 15. März unterzeichnet. Treffpunkt für die Übergabe ist die "
     "Friedrichstraße in Berlin, Ausgang U-Bahnhof Stadtmitte. Bitte bei der Anmeldung die Bestellnummer 4500219377 angeben."),

    ("tuned", "csv",
     "customer_id,name,email,postcode\n1001,[[PERSON|Ana Lúcia Ferreira]],[[EMAIL|analucia.ferreira@uol.com.br]],[[ZIP_CODE|04538-132]]\n"
     "1002,[[PERSON|Dariusz Wróblewski]],[[EMAIL|d.wroblewski@onet.pl]],[[ZIP_CODE|31-042]]\n"
     "1003,[[PERSON|Nguyen Thi Thu Ha]],[[EMAIL|thuha.nguyen88@yahoo.com]],[[ZIP_CODE|70000]]\n"
     "1004,[[PERSON|Oisín Mac Giolla]],[[EMAIL|oisin.macgiolla@eircom.net]],[[ZIP_CODE|D08 VF8H]]"),

    ("tuned", "letter",
     "Madame [[PERSON|Hélène Marchetti]]\n[[ADDRESS|27, avenue Jean-Médecin\n06000 Nice]]\n\nObjet : résiliation du contrat client n° [[ACCOUNT_NUMBER|FR-CLT-55820391]]\n\n"
     "Madame, nous accusons réception de votre demande de résiliation, qui prendra effet à la fin du mois. "
     "Veuillez agréer, Madame, l'expression de nos salutations distinguées.\n\n[[PERSON|Olivier Rabaud]]\nService clients"),

    ("tuned", "code",
     "# TODO: move these to the vault before merging\nAWS_ACCESS_KEY_ID = '[[AWS_ACCESS_KEY|AKIAZ7QF3MRX4TLB9W2E]]'\n"
     "SENDGRID_API_KEY = '[[API_KEY|SG.q8Rt2LmXw0YcVb4N.k7Hj3PfA9sD1gZeQwUiO5rTy6LnMbVcXz0aS2dF4gHj]]'\n"
     "ALERT_RECIPIENT = '[[EMAIL|oyelaran.b@northwind-labs.io]]'  # [[PERSON|Bisi]] is on call this sprint"),

    ("tuned", "clinical",
     "Pt [[PERSON|Eleni Papadopoulou]], MRN [[MEDICAL_RECORD_NUMBER|00739184]], DOB [[DATE_OF_BIRTH|1959-11-02]], admitted [[DATE|2024-03-08]] with "
     "community-acquired pneumonia. Reviewed by Dr. [[PERSON|Okonjo]] (resp) on [[DATE|2024-03-09]]; switched to IV co-amoxiclav. "
     "Daughter [[PERSON|Sofia]] is next of kin, contact [[PHONE|07911 123 884]]."),

    ("tuned", "pii_free",
     "v2.14.3 (2024-05-02)\n- Fixed crash in the Dijkstra path planner when the graph has zero-weight edges\n- Bumped boto3 to 1.34.91 and Django to 4.2.11\n"
     "- Invoice export now prefixes numbers with INV-2024-\n- Renamed FrankWolfeSolver to ConditionalGradientSolver\n- Dropped support for Python 3.8"),

    ("tuned", "chat",
     "[[PERSON|Camille]] : tu as l'adresse pour la livraison du canapé ?\n[[PERSON|Yannick]] : oui, c'est [[ADDRESS|14 rue des Tanneurs, 3e étage, 67000 Strasbourg]]\n"
     "[[PERSON|Camille]] : et le nom sur la sonnette ?\n[[PERSON|Yannick]] : [[PERSON|Diallo-Fournier]], et sinon appelle [[PHONE|06 72 18 44 90]]"),

    ("tuned", "notes",
     "Offsite planning - attendees: [[PERSON|Lars Ekström]], [[PERSON|Fatima Zahra El Idrissi]], [[PERSON|Callum Drummond]], [[PERSON|Tereza Horáková]].\n"
     "- [[PERSON|Lars]] sends the revised budget by Wednesday\n- [[PERSON|Tereza]] confirmed the venue at [[ADDRESS|Karlova 14, 110 00 Praha 1]]\n"
     "- [[PERSON|Callum]] and [[PERSON|Fatima]] to sort out flights; [[PERSON|Tereza]]'s mobile for the venue is [[PHONE|+420 736 518 204]]"),

    ("tuned", "form",
     "Cadastro de cliente\nNome completo: [[PERSON|João Pedro Albuquerque da Silva]]\nData de nascimento: [[DATE_OF_BIRTH|22/07/1993]]\n"
     "Endereço: [[ADDRESS|Rua Oscar Freire, 1120, apto 73, Jardins, São Paulo - SP, 01426-001]]\nCelular: [[PHONE|(11) 98472-3316]]\nE-mail: [[EMAIL|jp.albuquerque93@gmail.com]]\n"
     "Cartão para débito: [[CREDIT_CARD|5527 3100 8846 1203]]"),

    ("tuned", "mail",
     "Hi [[PERSON|Rahul]],\n\nCould you update the payroll record for [[PERSON|Chidinma Okafor-Bello]] before the 25th? Her salary should now go to account "
     "[[BANK_ACCOUNT|41829037]], and she has moved to [[ADDRESS|Flat 3, 28 Albion Road, Stoke Newington, London N16 9PH]], and her new mobile is [[PHONE|07700 900 562]].\n\nThanks,\n[[PERSON|Megan Harrow]]\nPeople Ops"),

    ("tuned", "pii_free",
     "¿Cuál es la diferencia entre el síndrome de Down y el síndrome de Asperger? Necesito una explicación sencilla para una charla en el colegio "
     "San Ignacio, sin tecnicismos y en menos de una página."),

    ("tuned", "ticket",
     "Incidencia 20931: el cliente [[PERSON|José Manuel Arriaga Etxeberria]] indica que no recibe el SMS de verificación en el [[PHONE|+34 612 48 93 07]]. "
     "IMEI del terminal: [[DEVICE_ID|353918104472615]]. Dirección de facturación: [[ADDRESS|Calle de Alcalá 214, 5º B, 28028 Madrid]], cuenta [[ACCOUNT_NUMBER|CL-228104937]]. "
     "Hablé con él ayer y confirma que la SIM es nueva."),

    ("tuned", "letter",
     "[[PERSON|Priya Raghunathan]]\n[[ADDRESS|No. 14, 3rd Cross, Indiranagar, Bengaluru, Karnataka 560038]]\n\nDear Ms [[PERSON|Raghunathan]],\n\n"
     "We are pleased to confirm your tenancy from 1 June. The security deposit can be paid to our office, and [[PERSON|Venkatesh Iyer]] "
     "will hand over the keys on the day you move in; he can be reached on [[PHONE|+91 98450 12763]].\n\nYours sincerely,\n[[PERSON|Anjali Deshpande]]"),

    ("tuned", "prompt",
     "My landlord [[PERSON|Gerald Pennington]] is refusing to return my $1,800 deposit even though I left the place spotless. "
     "Write a firm but polite demand letter I can mail to him at [[ADDRESS|#1204 - 1288 West Georgia Street, Vancouver, BC V6E 4R3]]."),

    ("tuned", "pii_free",
     "What's the difference between Crohn's disease and ulcerative colitis, and is Hashimoto's thyroiditis more common in people who already have one of them? "
     "Please cite guidance from the Mayo Clinic or Johns Hopkins Medicine if you can."),

    ("tuned", "chat",
     "[[PERSON|Sanne]]: hoi, wat is het adres van [[PERSON|Joost]] ook alweer? ik wil een kaartje sturen\n"
     "[[PERSON|Thijs]]: [[ADDRESS|Prinsengracht 418-2hoog, 1016 JB Amsterdam]]\n[[PERSON|Sanne]]: top, dank je\n"
     "[[PERSON|Thijs]]: zijn nieuwe nummer is trouwens [[PHONE|06 41 29 83 57]]"),

    ("tuned", "mail",
     "Subject: Double charge on order 4471-AC\n\nHello, my name is [[PERSON|Burak Yıldırım]] and I was charged twice on my card "
     "[[CREDIT_CARD|4532 0177 4281 0933]] for the same order. The parcel was delivered to [[ADDRESS|388 Grove Street, Apt 4, Jersey City, NJ 07302]], "
     "so there is no question that only one was shipped. The confirmation emails went to [[EMAIL|burak.yildirim@outlook.com]]. Please refund the duplicate."),

    ("tuned", "form",
     "Anmeldung zur Vereinsmitgliedschaft\nName: [[PERSON|Jürgen Oberhauser]]\nGeburtsdatum: [[DATE_OF_BIRTH|12.09.1974]]\n"
     "Anschrift: [[ADDRESS|Lindwurmstraße 88, 2. OG, 80337 München]]\nE-Mail: [[EMAIL|j.oberhauser@t-online.de]]\n"
     "IBAN für Lastschrift: [[IBAN|DE72430609672089134500]]"),

    ("tuned", "ticket",
     "Asset return: I spoke with [[PERSON|Wanjiru Kamau]] and she dropped off her laptop at reception. Serial [[DEVICE_ID|PF3K9Q2X]], "
     "Wi-Fi MAC [[DEVICE_ID|3C:22:FB:91:0A:7E]]. Please wipe it and reassign to [[PERSON|Diego Salcedo Ruiz]], who starts Monday."),

    ("tuned", "pii_free",
     "Le musée d'Orsay prolonge l'exposition jusqu'au 30 juin. Accès par la ligne 12, station Solférino, ou par le RER C. "
     "Tarif réduit sur présentation de la carte Navigo. Référence de la facture de groupe : F-2024-11832."),

    ("tuned", "clinical",
     "Discharge summary. Patient: [[PERSON|Khalid bin Saeed Al-Harthy]], MRN [[MEDICAL_RECORD_NUMBER|KH-5520913]], DOB [[DATE_OF_BIRTH|1967-08-30]], member ID [[HEALTH_PLAN_ID|BCX482019377]]. "
     "Admitted [[DATE|02/14/2024]] for elective laparoscopic cholecystectomy, discharged [[DATE|02/16/2024]] without complications. "
     "Follow up with Dr. [[PERSON|Rosenthal]] in clinic."),

    ("tuned", "notes",
     "Visita a domicilio: la señora [[PERSON|Guadalupe Téllez]] vive en [[ADDRESS|Av. Insurgentes Sur 1602, Int. 8, Col. Crédito Constructor, Benito Juárez, 03940 Ciudad de México]]. "
     "Su hijo [[PERSON|Emiliano]] nos atendió y pidió que llamemos antes al [[PHONE|55 4821 9037]]."),

    ("tuned", "chat",
     "Agent: Thanks for waiting! Can I confirm the name on the policy?\nCustomer: It's [[PERSON|Imelda Castañeda Reyes]], it's still under my maiden name.\n"
     "Agent: And your date of birth?\nCustomer: [[DATE_OF_BIRTH|March 3, 1991]]\n"
     "Agent: And a contact number?\nCustomer: [[PHONE|+63 917 823 4410]]\nAgent: Perfect. The documents will go to [[ADDRESS|Unit 5B, 118 Jupiter Street, Bel-Air, Makati City, 1209 Metro Manila]]."),

    ("tuned", "pii_free",
     "SELECT o.order_id, o.total, c.region\nFROM orders o\nJOIN customers c ON c.id = o.customer_id\n"
     "WHERE o.created_at >= '2023-01-01' AND c.region IN ('Victoria', 'Georgia', 'Washington')\nORDER BY o.total DESC\nLIMIT 50;"),

    ("tuned", "mail",
     "Olá [[PERSON|Inês]],\n\nsegue o IBAN para o reembolso da viagem a Sintra: [[IBAN|PT74 0035 0697 0063 9172 4480 2]]. "
     "O titular da conta é o meu marido, [[PERSON|Tiago Meireles]].\n\nBeijinhos,\n[[PERSON|Rita Gonçalves]]"),

    ("tuned", "form",
     "Vehicle ownership transfer\nSeller: [[PERSON|Dong-hyun Baek]]\nBuyer: [[PERSON|Rebecca O'Sullivan]]\nVIN: [[VEHICLE_ID|3FADP4BJ7KM118204]]\n"
     "Plate: [[VEHICLE_ID|8KLM204]]\nBuyer's driver license: [[US_DRIVER_LICENSE|B7284019]] (CA)\nBuyer email: [[EMAIL|becca.osullivan@icloud.com]]"),

    ("tuned", "ticket",
     "Keluhan pelanggan: Bapak [[PERSON|Agus Setiawan]] melaporkan paketnya belum diterima sejak minggu lalu. Alamat pengiriman: "
     "[[ADDRESS|Jl. Kaliurang Km 5,6 No. 17, Sleman, Daerah Istimewa Yogyakarta 55281]]. No. HP [[PHONE|0812-2734-9910]], email [[EMAIL|agus.setiawan77@yahoo.co.id]], nomor pelanggan [[ACCOUNT_NUMBER|ID-7730291]]."),

    ("tuned", "pii_free",
     "Release 5.2.0 van de Rabobank-app: nieuwe widget voor Tikkie-verzoeken, bugfix in het iDEAL-scherm en ondersteuning voor Android 14. "
     "Hiermee is ticket JIRA-4821 opgelost. De uitrol start dinsdag in Utrecht en Eindhoven."),

    ("tuned", "notes",
     "Interview debrief: [[PERSON|Tunde]] was strong on systems design but [[PERSON|Hoang Minh Tuan]] had the cleaner take-home. "
     "[[PERSON|Keller]] wants a second round for both; honestly I'd just make an offer to [[PERSON|Tuan]] and keep [[PERSON|Tunde]] warm for the platform team."),

    ("tuned", "prompt",
     "Puoi tradurre in inglese questa mail? 'Gentile [[PERSON|Alessandro Ferraresi]], la informiamo che il pacco destinato a "
     "[[ADDRESS|Via dei Mille 41, scala B, int. 6, 80121 Napoli NA]] è in giacenza presso il nostro deposito. Può ritirarlo entro 10 giorni.'"),

    ("tuned", "letter",
     "To: [[PERSON|Adaeze Nwachukwu]]\n[[ADDRESS|Plot 27, Admiralty Way, Lekki Phase 1, Lagos 106104]]\n\nRe: Postgraduate scholarship award\n\n"
     "Dear [[PERSON|Adaeze]], congratulations! The committee chaired by Prof. [[PERSON|Olumide Bankole]] has approved your award for the 2024/25 session. "
     "Please confirm acceptance by replying to [[EMAIL|scholarships.office@unilag-alumni.org]]."),

    ("tuned", "pii_free",
     "Arsenal v Aston Villa at the Emirates on Saturday, then Manchester United host Tottenham Hotspur on Sunday. "
     "Which game has better odds for an underdog win, and is it worth flying into Birmingham instead of London?"),

    ("tuned", "clinical",
     "Aufnahme am [[DATE|14.02.2024]]: Frau [[PERSON|Gül Aydın]] (geb. [[DATE_OF_BIRTH|03.05.1948]]), Versichertennummer [[HEALTH_PLAN_ID|A123456780]], Fallnummer [[MEDICAL_RECORD_NUMBER|P-20240214-0371]], "
     "mit Verdacht auf Schlaganfall. Hausarzt Dr. [[PERSON|Wenzel]] wurde telefonisch informiert; Sohn [[PERSON|Serkan Aydın]] ist Ansprechpartner."),

    ("tuned", "prompt",
     "Summarize this in two lines for my manager: 'Per our call, [[PERSON|Jan-Willem de Groot]] will hand over the Rotterdam accounts to "
     "[[PERSON|Ayşe Demir]] by Friday, and [[PERSON|Ramón]] will cover the Antwerp clients until [[PERSON|Ingrid Solberg]] is back from leave.'"),

    ("tuned", "mail",
     "Merhaba [[PERSON|Elif]] Hanım,\n\nMart ayı kirasını [[IBAN|TR68 0001 2009 4580 0005 8217 34]] numaralı hesaba yatırabilirsiniz. "
     "Daire adresi sözleşmede [[ADDRESS|Moda Caddesi No: 45 Daire: 7, Kadıköy, 34710 İstanbul]] olarak geçiyor.\n\nSaygılarımla,\n[[PERSON|Mehmet Can Özdemir]]"),

    ("tuned", "code",
     "INSERT INTO patients (mrn, first_name, last_name, dob, phone)\nVALUES ('[[MEDICAL_RECORD_NUMBER|A-2210457]]', '[[PERSON|Reza]]', '[[PERSON|Tehrani]]', "
     "'[[DATE_OF_BIRTH|1978-06-21]]', '[[PHONE|+1-416-555-0137]]');"),

    ("tuned", "pii_free",
     "Our stack is Kubernetes on Google Cloud, Jenkins for CI, Grafana dashboards and a three-node Cassandra cluster. "
     "Would moving to AWS Fargate and Amazon Aurora really cut ops overhead for a team of four?"),

    ("tuned", "mail",
     "Hi all, quick intro: [[PERSON|Agnieszka Zielińska]] joins us Monday as QA lead and will sit next to [[PERSON|Pieter]]. "
     "You can reach her at [[EMAIL|agnieszka.zielinska@brightforge.co]] or [[PHONE|+48 601 234 877]], and her profile is "
     "[[URL|https://www.linkedin.com/in/agnieszka-zielinska-qa]]. Please make her feel welcome!"),

    # ---------------------------------------------------------------- heldout
    ("heldout", "prompt",
     "I'm writing a eulogy for my grandfather, [[PERSON|Seamus Patrick Lenihan]]. He married [[PERSON|Bridget]] in 1961, "
     "and his oldest friend Father [[PERSON|Declan Moriarty]] will read it at the service. Can you help me make it warm but under three minutes?"),

    ("heldout", "pii_free",
     "Draft a short press blurb: Baker McKenzie advised Lloyds Banking Group on the sale of its Edinburgh data centre on Princes Street. "
     "Completion is expected in Q3 2024, subject to regulatory approval."),

    ("heldout", "mail",
     "Dear Mr. [[PERSON|Okoro]],\n\nThank you for submitting your I-9. To finish onboarding we still need a clear copy of your passport "
     "(number [[US_PASSPORT|584920173]]) and confirmation that your SSN is [[US_SSN|523-47-1186]] and your date of birth [[DATE_OF_BIRTH|June 2, 1990]].\n\nBest regards,\n[[PERSON|Tamsin Whitcombe]]\nHR Coordinator"),

    ("heldout", "form",
     "Naam: [[PERSON|Maarten van der Heijden]]\nGeboortedatum: [[DATE_OF_BIRTH|19-02-1981]]\nAdres: [[ADDRESS|Oudegracht 112 bis, 3511 AX Utrecht]]\n"
     "IBAN: [[IBAN|NL82 RABO 0318 4729 56]]\nE-mail: [[EMAIL|m.vanderheijden@kpnmail.nl]]\nKenteken: [[VEHICLE_ID|KR-719-P]]"),

    ("heldout", "chat",
     "[[PERSON|Wei Chen]]: prod is throwing 500s again\n[[PERSON|Oluwaseun]]: seeing it too, most of the traffic is from [[IP_ADDRESS|198.51.100.23]] and [[IP_ADDRESS|10.42.7.19]]\n"
     "[[PERSON|Wei Chen]]: that's [[PERSON|Marisol]]'s load-test box, I'll ping her\n[[PERSON|Oluwaseun]]: tell her to kill it before [[PERSON|Henrik]] sees the bill"),

    ("heldout", "clinical",
     "Compte rendu de consultation du [[DATE|12/03/2024]]. M. [[PERSON|Abdelkader Benali]], né le [[DATE_OF_BIRTH|07/08/1962]], IPP [[MEDICAL_RECORD_NUMBER|0048213376]], mutuelle n° "
     "[[HEALTH_PLAN_ID|MGEN-7720418836]], adressé par le Dr [[PERSON|Lefèvre]] pour douleurs thoraciques atypiques. ECG normal, contrôle prévu le [[DATE|26/03/2024]]."),

    ("heldout", "pii_free",
     "La sindrome di Sjögren e il morbo di Basedow possono coesistere? Mi serve un riassunto per il corso di infermieristica all'Università di Padova, "
     "con riferimenti alle linee guida 2023."),

    ("heldout", "ticket",
     "Chargeback dispute CB-55102. Cardholder [[PERSON|Stanisław Kubiak]] claims he never received order 90211, placed from [[IP_ADDRESS|77.248.130.61]]. Full PAN from the gateway log: "
     "[[CREDIT_CARD|6011983277104528]]. Shipping address: [[ADDRESS|9 Kingfisher Close, Bramhall, Stockport SK7 2LP]]. "
     "Courier says it was signed for by [[PERSON|K. Brennan]]."),

    ("heldout", "csv",
     "employee_id,first,last,phone,team\nE-2041,[[PERSON|Aoife]],[[PERSON|Gallagher]],[[PHONE|+353 87 214 6630]],Finance\n"
     "E-2042,[[PERSON|Ngozi]],[[PERSON|Eze]],[[PHONE|+234 803 471 2296]],Legal\nE-2043,[[PERSON|Björn]],[[PERSON|Halvorsen]],[[PHONE|+47 912 48 330]],Platform\n"
     "E-2044,[[PERSON|Thanh]],[[PERSON|Pham]],[[PHONE|+84 90 318 2274]],Design"),

    ("heldout", "letter",
     "Familie [[PERSON|Nowak]]\n[[ADDRESS|Gartenweg 5\n34117 Kassel]]\n\nSehr geehrte Frau [[PERSON|Nowak]], sehr geehrter Herr [[PERSON|Nowak]],\n\n"
     "zu Ihrer Kundennummer [[ACCOUNT_NUMBER|KD-4402918]] liegt uns noch keine Zählerstandsmeldung vor. Bitte holen Sie diese bis zum 31. Mai nach.\n\n"
     "Mit freundlichen Grüßen\n[[PERSON|Sabine Grünwald-Ertl]]"),

    ("heldout", "pii_free",
     "Please write a patient education leaflet explaining Alzheimer's disease versus Lewy body dementia. Mention the Glasgow Coma Scale only if it is "
     "actually relevant, and keep it at a sixth-grade reading level."),

    ("heldout", "clinical",
     "ED note [[DATE|11/22/2023]]: 34M [[PERSON|Arjun Venkataraman]], MRN [[MEDICAL_RECORD_NUMBER|MRN-448219]], presents with right lower quadrant pain x 18h. "
     "Insurance member ID [[HEALTH_PLAN_ID|W284410739]]. CT confirms acute appendicitis; surgery consulted. Attending: Dr. [[PERSON|Nadia Haddad]], "
     "state license [[LICENSE_NUMBER|A118730]]."),

    ("heldout", "form",
     "Tenant: [[PERSON|Avneet Kaur Sandhu]]\nCo-tenant: [[PERSON|Harjit S. Sandhu]]\nUnit address: [[ADDRESS|1806-88 Harbour Street, Toronto, ON M5J 0C3]]\n"
     "Employer phone: [[PHONE|416-555-0194]]\nPre-authorized debit account: [[BANK_ACCOUNT|5021847]]"),

    ("heldout", "mail",
     "Hola [[PERSON|Marta]]:\n\nte paso mi cuenta para repartir el alquiler del piso de la playa: [[IBAN|ES85 0182 2370 4202 0156 3890]], "
     "titular [[PERSON|Lucía Fernández de Córdoba]]. Ya me ha pagado [[PERSON|Nacho]], solo faltáis tú y [[PERSON|Begoña]].\n\nUn abrazo,\n[[PERSON|Lucía]]"),

    ("heldout", "pii_free",
     "A Casas Bahia e o Banco Itaú anunciaram uma parceria; o lançamento será na Avenida Paulista, em frente ao MASP, no dia 12 de agosto. "
     "Confirme a presença com o número do pedido 200045871."),

    ("heldout", "code",
     "const stripe = require('stripe')('[[API_KEY|sk_live_51Nx8vQ2eZvKYlo2CbT7uR3mWq9PfH0dLsA4xJ6yN]]');\n"
     "const ADMIN_ALLOWLIST = ['[[IP_ADDRESS|2a02:8108:1c40:5e00:9d1:4f2b:ae3:71c0]]'];\n"
     "// maintainer: [[PERSON|Yannis Kostopoulos]] <[[EMAIL|ykostopoulos@fastmail.com]]>"),

    ("heldout", "letter",
     "[[PERSON|Matilda Hargreaves]]\n[[ADDRESS|Unit 12, 45-47 Brunswick Street\nFitzroy VIC 3065]]\n\nDear [[PERSON|Matilda]],\n\n"
     "Thank you for your application to volunteer at the community garden. [[PERSON|Nikhil]] will ring you from [[PHONE|0431 226 874]] to arrange an induction.\n\nKind regards,\n[[PERSON|Wendy Ashcroft]]"),

    ("heldout", "chat",
     "[[PERSON|Lukas]]: Kannst du mir die Handynummer von Frau [[PERSON|Albrecht]] geben?\n[[PERSON|Mia]]: klar, [[PHONE|0171 4482910]]\n"
     "[[PERSON|Mia]]: sie wohnt übrigens jetzt in [[ADDRESS|Am Hofgarten 3a, 53113 Bonn]], falls du die Einladung per Post schickst"),

    ("heldout", "pii_free",
     "def apply_discount(order_id: str, pct: float) -> Decimal:\n    # INV-88310 regression: round half up, not banker's rounding\n"
     "    base = fetch_total(order_id)\n    return (base * Decimal(1 - pct)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)\n\n"
     "# requires python >= 3.11.4, tested on Ubuntu 22.04"),

    ("heldout", "notes",
     "Trip notes: we stay with [[PERSON|Yuki Tanabe]]'s family at [[ADDRESS|3-8-21 Kitazawa, Setagaya-ku, Tokyo 155-0031]] for the first four nights. "
     "Her brother [[PERSON|Kenji]] will pick us up at Haneda. Backup contact: [[PHONE|+81 90-4471-2385]]."),

    ("heldout", "ticket",
     "Chamado 4410: a cliente [[PERSON|Maria das Graças Nogueira]] relata cobrança indevida no cartão [[CREDIT_CARD|4916 4503 3812 6701]]. "
     "CEP de entrega [[ZIP_CODE|30140-071]]. Conta do cliente [[ACCOUNT_NUMBER|BR-55129044]]. Retornar pelo e-mail [[EMAIL|gracinha.nogueira@bol.com.br]]."),

    ("heldout", "prompt",
     "Fix the grammar in this: 'me and [[PERSON|Halima]] went to see Mr. [[PERSON|Abdullahi]] about the fence and he said that "
     "[[PERSON|Musa Garba]] would pay for half of it if [[PERSON|Chukwuemeka]] agrees'"),

    ("heldout", "pii_free",
     "Tolong jelaskan perbedaan Gojek dan Grab untuk pesan antar makanan di Jakarta Selatan, terutama di sekitar Jalan Sudirman. "
     "Versi aplikasi yang saya pakai 4.82.1."),

    ("heldout", "mail",
     "Hi [[PERSON|Kayla]]! The invitations go to print tomorrow, so can you double-check your parents' address? I have "
     "[[ADDRESS|5521 Magnolia Crest Drive, Charlotte, NC 28277]]. Also, does Uncle [[PERSON|Ray]] still live in Raleigh?\n\nLove,\n[[PERSON|Brianna]]"),

    ("heldout", "form",
     "Nom : [[PERSON|Dubois-Tremblay]]\nPrénom : [[PERSON|Marie-Ève]]\nAdresse : [[ADDRESS|Résidence Les Tilleuls, bât. C, 12 allée des Pins, 33600 Pessac]]\n"
     "Courriel : [[EMAIL|me.dubois.tremblay@orange.fr]]\nIBAN : [[IBAN|FR96 3000 3021 9700 0507 8912 436]]"),

    ("heldout", "ticket",
     "Fleet ticket: van [[VEHICLE_ID|LK19 XMT]] reported an engine warning light by driver [[PERSON|Amir Hosseini]] (licence [[LICENSE_NUMBER|HOSSE802157A99KX]]). "
     "Telematics unit IMEI [[DEVICE_ID|861536030194452]], VIN [[VEHICLE_ID|WF0EXXTTRELJ48215]]. Booked into the depot for Thursday."),

    ("heldout", "pii_free",
     "BUG-2291: the Export to Excel button in Salesforce Lightning fails with 'Apex CPU time limit exceeded' when a report exceeds 50,000 rows. "
     "Steps: Reports > Sales by Region > Lincoln Park District, then click Export."),

    ("heldout", "clinical",
     "Follow-up visit [[DATE|2024-01-17]]: [[PERSON|Achieng Otieno]], 52F (DOB [[DATE_OF_BIRTH|1971-04-09]]), last seen [[DATE|2023-12-05]]. Creatinine trending up despite ACE inhibitor. "
     "Plan: refer to Dr. [[PERSON|Mwangi]] in nephrology. NHIF no. [[HEALTH_PLAN_ID|NHIF-40219873]]."),

    ("heldout", "mail",
     "Ciao [[PERSON|Chiara]], ti giro i dati di [[PERSON|Francesco De Luca]] per il contratto: codice cliente [[ACCOUNT_NUMBER|CL-00918273]], "
     "IBAN [[IBAN|IT56 Y030 6909 6061 0000 0072 841]], residenza [[ADDRESS|Corso Vittorio Emanuele II 154, 10138 Torino]]. Fammi sapere se manca qualcosa."),

    ("heldout", "chat",
     "hey it's [[PERSON|Rosalind]] from the climbing gym 👋 my insta is [[URL|https://www.instagram.com/roz.climbs.things]] if you want the bouldering videos, "
     "or just text me at [[PHONE|(503) 555-0147]]"),

    ("heldout", "pii_free",
     "Galatasaray ile Fenerbahçe maçı hangi kanalda yayınlanacak? Maç RAMS Park'ta mı oynanacak, yoksa Kadıköy'de mi? "
     "Bilet sipariş numaram TK-55821093."),

    ("heldout", "form",
     "Full legal name: [[PERSON|Hannah Grace Lindqvist-Moore]]\nDate of birth: [[DATE_OF_BIRTH|September 14, 1988]]\n"
     "Most recent passport number: [[US_PASSPORT|A02291847]]\nMailing address: [[ADDRESS|PO Box 1187, Bozeman, MT 59771]]\nPhone: [[PHONE|(406) 555-0119]]\nEmail: [[EMAIL|hglm88@protonmail.com]]"),

    ("heldout", "notes",
     "Reunião de condomínio: o Sr. [[PERSON|Armando Figueiredo]] (3.º esq.) voltou a queixar-se do elevador. A D. [[PERSON|Conceição]] ficou de falar com a "
     "administração. Morada para correspondência: [[ADDRESS|Rua de Cedofeita 312, 4050-174 Porto]]."),

    ("heldout", "notes",
     "[[PERSON|Farhan Qureshi]] arrived forty minutes late again, so [[PERSON|Mei-Ling Zhou]] covered the first half of his shift. "
     "Afterwards [[PERSON|Qureshi]] apologised and said his car had broken down. [[PERSON|Ortega]] signed off the incident form."),

    ("heldout", "pii_free",
     "QUARTERLY OPERATIONS REVIEW\nAppendix B: Warehouse Throughput - Memphis, Reno, Columbus\nTable 4. Returns by Carrier (UPS, FedEx, DHL)\n"
     "Invoice batch 2024-Q2-0047 reconciled on 30 June 2024."),

    ("heldout", "chat",
     "[[PERSON|Dewi]]: Kak, nomor rekening BCA kakak berapa? Mau transfer uang arisan.\n[[PERSON|Rina Puspitasari]]: [[BANK_ACCOUNT|4371029856]] a.n. "
     "[[PERSON|Rina Puspitasari]]. Bukti transfernya kirim ke WA [[PHONE|+62 813-9012-4467]] ya"),

    ("heldout", "letter",
     "From: [[PERSON|Syed Hamza Ali Naqvi]], [[ADDRESS|House 42, Street 7, F-7/2, Islamabad 44000]]\nTo: The Branch Manager, Habib Bank Limited\n"
     "Subject: Request to update mobile number\n\nRespected Sir, kindly update the mobile number linked to my account [[BANK_ACCOUNT|01237984562103]] "
     "to [[PHONE|+92 300 5128844]]."),

    ("heldout", "prompt",
     "Ayúdame a redactar una reclamación formal a la compañía eléctrica. Mis datos: [[PERSON|Valentina Ochoa Paredes]], domicilio "
     "[[ADDRESS|Passeig de Gràcia 71, 3r 2a, 08008 Barcelona]], contrato [[ACCOUNT_NUMBER|ES-0031-88472615]], correo [[EMAIL|valentina.ochoa.p@gmail.com]]. Me han facturado dos veces el mes de enero."),

    ("heldout", "csv",
     "order_id,ship_to_name,ship_to_address,phone\n77120,[[PERSON|Tran Van Long]],\"[[ADDRESS|27 Ly Thuong Kiet, Hoan Kiem, Hanoi]]\",[[PHONE|+84 24 3825 1197]]\n"
     "77121,[[PERSON|Heike Baumgartner]],\"[[ADDRESS|Schillerstraße 12, 01069 Dresden]]\",[[PHONE|+49 351 8812047]]\n"
     "77122,[[PERSON|Ailsa MacLeod]],\"[[ADDRESS|14 Marchmont Crescent, Edinburgh EH9 1HN]]\",[[PHONE|+44 131 496 0822]]"),

    ("heldout", "pii_free",
     "Which is better for a twelve-year-old, 'A Wrinkle in Time' or 'The Phantom Tollbooth'? He already finished 'Hatchet' and 'Wonder' "
     "and liked the survival parts best."),

    ("heldout", "mail",
     "Beste [[PERSON|Femke]],\n\n[[PERSON|Ruud de Wit]] heeft de offerte getekend. Zijn mailadres is [[EMAIL|ruud.dewit@ziggo.nl]] en de factuur mag naar "
     "[[ADDRESS|Korte Hoogstraat 8, 3011 GL Rotterdam]]; bellen kan op [[PHONE|010 412 7789]].\n\nGroet,\n[[PERSON|Anouk]]"),

    ("heldout", "code",
     "smtp:\n  host: smtp.gmail.com\n  user: [[EMAIL|ops.alerts.kristiansen@gmail.com]]\naws:\n  access_key_id: [[AWS_ACCESS_KEY|AKIA4HQW7TNE2XPRJ5LM]]\n"
     "  secret_access_key: [[API_KEY|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]]\n  region: eu-north-1"),

    ("heldout", "chat",
     "[[PERSON|Martina]]: ho trovato sul treno il portafoglio di un certo [[PERSON|Salvatore Amato]]\n[[PERSON|Davide]]: c'è un documento?\n"
     "[[PERSON|Martina]]: la patente, n. [[LICENSE_NUMBER|U1H72G945K]], e l'indirizzo è [[ADDRESS|Via Etnea 301, 95125 Catania]]. Lo porto ai carabinieri"),

    ("heldout", "form",
     "Ad Soyad: [[PERSON|Zeynep Kaya Arslan]]\nDoğum Tarihi: [[DATE_OF_BIRTH|14.06.1995]]\nAdres: [[ADDRESS|Atatürk Bulvarı No: 128/4, Çankaya, 06680 Ankara]]\n"
     "Telefon: [[PHONE|0532 418 27 90]]\nE-posta: [[EMAIL|zeynep.karslan@hotmail.com]]"),

    ("heldout", "mail",
     "Hey [[PERSON|Giovanni]], could you send my share of the cabin deposit back when you get a chance? My personal IBAN is "
     "[[IBAN|GB38 BARC 2047 4583 9102 76]]. [[PERSON|Precious Adeyemi]] already paid hers, and [[PERSON|Sung-min]] said he'd settle up on Friday."),
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
            if entry is ROUND_4:
                rnd = 4
                continue
            if entry is ROUND_5:
                rnd = 5
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
