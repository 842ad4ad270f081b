"""Round 5: written by a third author (2026-12-04) under the same blindness, with names and postal
addresses as most of its values (in nine languages), and PII-free documents that are hard for
names: firms, eponyms, teams, software. Its held-out half was first scored on the build that
brought the census name lists, before anything was tuned on round 5.

Each entry is (split, kind, text) with values marked inline as [[TYPE|value]]
(see build-dev-corpus.py)."""

DOCS = [
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
