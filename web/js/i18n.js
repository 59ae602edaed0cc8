// Screen labels in en, sk, de, ru. POS text is never translated.

const LABELS = {
  en: {
    disconnected: "Disconnected — reconnecting…",
    connecting: "Connecting…",
    station: "Station", expo: "Expo", board: "Orders", pickup: "Pickup",
    preparing: "Preparing", ready: "Ready",
    accept: "Accept", bump: "Bump", bumpOrder: "Bump order", refuse: "Refuse", recall: "Recall",
    recallTitle: "Recall a bumped order", nothingToRecall: "Nothing to recall",
    refuseTitle: "Refuse order", reason: "Reason", cancel: "Cancel", confirm: "Confirm",
    reasons: ["Out of stock", "Cannot make", "Duplicate"],
    allDay: "All day", nothingOpen: "No open orders",
    table: "Table", takeAway: "Take away", delivery: "Delivery", walkIn: "Dine in",
    course: "Course", page: "Page", of: "of",
    // Cook screen: selection, undo, late, long tickets, actions waiting for the link.
    selectFirst: "Select a ticket first: its number, then Enter", undo: "Undo", bumped: "Bumped", late: "LATE",
    continued: "continued", more: "more", continues: "continues", queued: "waiting for connection", notDone: "Not done",
    soundOn: "Sound on", soundOff: "Sound off", enableSound: "Tap to enable sound",
    done: "done", void: "VOID",
    order: "Order", status: "Status", age: "Age", where: "Where",
    unknownEndpoint: "Unknown station", chooseScreen: "Choose a screen",
    failed: "Failed", printer: "Printer", retryPrinter: "Retry now",
    posRef: "POS",
    // Printer alerts, kitchen words for the cashier, marks, titles, text size.
    printerLine: "{name} printer: {state}",
    printerStates: {
      offline: "offline", timeout: "not responding", disconnected: "connection lost", paper_out: "out of paper",
      cover_open: "cover open", error: "printer error", unknown: "unknown",
    },
    kitchen: { waiting: "In kitchen", cooking: "Cooking", ready: "Ready", refused: "Refused", cancelled: "Cancelled" },
    recalled: "RECALLED", refusedBecause: "Refused: {reason}",
    titleStation: "{name} — kds station", titleView: "{name} — kds", screens: "Screens",
    textSize: "Text size",
    // Pacing: held courses, prep-time waits, scheduled orders.
    held: "HELD", startsIn: "starts in {time}", fireCourse: "Fire course {course}", scheduledFor: "Scheduled {time}",
    statuses: {
      unknown: "unknown", created: "new", sent: "sent", delivered: "seen", refused: "refused",
      failed: "print failed", accepted: "cooking", processSkipped: "cancelled", processed: "done",
    },
    // Kitchen workflow: allergens, rush, moving tickets, reports.
    allergy: "ALLERGY", ackAllergens: "Allergy noted", allergyAcked: "allergy noted",
    rush: "RUSH", rushOrder: "Rush", move: "Move", moveTo: "Move to", movedTo: "MOVED TO", moveTitle: "Move ticket to another station",
    reports: "Reports", from: "From", to: "To", allStations: "All stations", show: "Show",
    tickets: "Tickets", items: "Items", avgTime: "Average", p90Time: "90 %", lateTickets: "Late",
    refusals: "Refused", recalls: "Recalls", printerFailures: "Printer failures", noTickets: "No tickets in this range",
    prepTimes: "Prep time per product", product: "Product", byStation: "Per station", byHour: "Per hour", hour: "Hour",
    ticketsPerHour: "Tickets per hour",
  },
  sk: {
    allergy: "ALERGIA", ackAllergens: "Alergia potvrdená", rush: "SÚRNE", rushOrder: "Súrne", move: "Presunúť", reports: "Prehľady",
    disconnected: "Odpojené — pripájam znova…",
    connecting: "Pripájam…",
    station: "Stanica", expo: "Expedícia", board: "Objednávky", pickup: "Výdaj",
    preparing: "Pripravuje sa", ready: "Hotové",
    accept: "Prijať", bump: "Hotovo", bumpOrder: "Vydať objednávku", refuse: "Odmietnuť", recall: "Vrátiť",
    recallTitle: "Vrátiť hotovú objednávku", nothingToRecall: "Nie je čo vrátiť",
    refuseTitle: "Odmietnuť objednávku", reason: "Dôvod", cancel: "Zrušiť", confirm: "Potvrdiť",
    reasons: ["Vypredané", "Nedá sa pripraviť", "Duplicitné"],
    allDay: "Celkom", nothingOpen: "Žiadne otvorené objednávky",
    table: "Stôl", takeAway: "So sebou", delivery: "Rozvoz", walkIn: "Na mieste",
    course: "Chod", page: "Strana", of: "z",
    selectFirst: "Najprv vyberte lístok: jeho číslo, potom Enter", undo: "Späť", bumped: "Hotové", late: "MEŠKÁ",
    continued: "pokračovanie", more: "ďalšie", continues: "pokračuje", queued: "čaká na spojenie", notDone: "Nevykonané",
    soundOn: "Zvuk zap.", soundOff: "Zvuk vyp.", enableSound: "Ťuknite pre zapnutie zvuku",
    done: "hotovo", void: "STORNO",
    order: "Objednávka", status: "Stav", age: "Čas", where: "Kde",
    unknownEndpoint: "Neznáma stanica", chooseScreen: "Vyberte obrazovku",
    failed: "Chyba", printer: "Tlačiareň", retryPrinter: "Skúsiť znova",
    posRef: "Pokladňa",
    printerLine: "Tlačiareň {name}: {state}",
    printerStates: {
      offline: "odpojená", timeout: "neodpovedá", disconnected: "spojenie prerušené", paper_out: "došiel papier",
      cover_open: "otvorený kryt", error: "chyba tlačiarne", unknown: "neznámy stav",
    },
    kitchen: { waiting: "V kuchyni", cooking: "Pripravuje sa", ready: "Hotové", refused: "Odmietnuté", cancelled: "Zrušené" },
    recalled: "VRÁTENÉ", refusedBecause: "Odmietnuté: {reason}",
    titleStation: "{name} — kds stanica", titleView: "{name} — kds", screens: "Obrazovky",
    textSize: "Veľkosť textu",
    held: "ČAKÁ", startsIn: "začne o {time}", fireCourse: "Spustiť chod {course}", scheduledFor: "Naplánované {time}",
    statuses: {
      unknown: "neznámy", created: "nová", sent: "odoslaná", delivered: "zobrazená", refused: "odmietnutá",
      failed: "tlač zlyhala", accepted: "pripravuje sa", processSkipped: "zrušená", processed: "hotová",
    },
  },
  de: {
    allergy: "ALLERGIE", ackAllergens: "Allergie gesehen", rush: "EILT", rushOrder: "Eilt", move: "Verschieben", reports: "Berichte",
    disconnected: "Verbindung getrennt — verbinde neu…",
    connecting: "Verbinde…",
    station: "Station", expo: "Pass", board: "Bestellungen", pickup: "Abholung",
    preparing: "In Zubereitung", ready: "Fertig",
    accept: "Annehmen", bump: "Fertig", bumpOrder: "Bestellung fertig", refuse: "Ablehnen", recall: "Zurückholen",
    recallTitle: "Fertige Bestellung zurückholen", nothingToRecall: "Nichts zurückzuholen",
    refuseTitle: "Bestellung ablehnen", reason: "Grund", cancel: "Abbrechen", confirm: "Bestätigen",
    reasons: ["Ausverkauft", "Nicht möglich", "Doppelt"],
    allDay: "Gesamt", nothingOpen: "Keine offenen Bestellungen",
    table: "Tisch", takeAway: "Zum Mitnehmen", delivery: "Lieferung", walkIn: "Im Haus",
    course: "Gang", page: "Seite", of: "von",
    selectFirst: "Erst einen Bon wählen: seine Nummer, dann Enter", undo: "Rückgängig", bumped: "Fertig", late: "SPÄT",
    continued: "Fortsetzung", more: "weitere", continues: "geht weiter", queued: "wartet auf Verbindung", notDone: "Nicht ausgeführt",
    soundOn: "Ton an", soundOff: "Ton aus", enableSound: "Tippen, um Ton zu aktivieren",
    done: "fertig", void: "STORNO",
    order: "Bestellung", status: "Status", age: "Zeit", where: "Wo",
    unknownEndpoint: "Unbekannte Station", chooseScreen: "Bildschirm wählen",
    failed: "Fehler", printer: "Drucker", retryPrinter: "Jetzt erneut",
    posRef: "Kasse",
    printerLine: "Drucker {name}: {state}",
    printerStates: {
      offline: "offline", timeout: "antwortet nicht", disconnected: "Verbindung verloren", paper_out: "kein Papier",
      cover_open: "Deckel offen", error: "Druckerfehler", unknown: "unbekannt",
    },
    kitchen: { waiting: "In der Küche", cooking: "In Arbeit", ready: "Fertig", refused: "Abgelehnt", cancelled: "Storniert" },
    recalled: "ZURÜCKGEHOLT", refusedBecause: "Abgelehnt: {reason}",
    titleStation: "{name} — kds Station", titleView: "{name} — kds", screens: "Bildschirme",
    textSize: "Textgröße",
    held: "WARTET", startsIn: "beginnt in {time}", fireCourse: "Gang {course} abrufen", scheduledFor: "Geplant {time}",
    statuses: {
      unknown: "unbekannt", created: "neu", sent: "gesendet", delivered: "angezeigt", refused: "abgelehnt",
      failed: "Druck fehlgeschlagen", accepted: "in Arbeit", processSkipped: "storniert", processed: "fertig",
    },
  },
  ru: {
    allergy: "АЛЛЕРГИЯ", ackAllergens: "Аллергия принята", rush: "СРОЧНО", rushOrder: "Срочно", move: "Перенести", reports: "Отчёты",
    disconnected: "Нет связи — переподключение…",
    connecting: "Подключение…",
    station: "Станция", expo: "Раздача", board: "Заказы", pickup: "Выдача",
    preparing: "Готовится", ready: "Готово",
    accept: "Принять", bump: "Готово", bumpOrder: "Выдать заказ", refuse: "Отказать", recall: "Вернуть",
    recallTitle: "Вернуть готовый заказ", nothingToRecall: "Нечего вернуть",
    refuseTitle: "Отказать в заказе", reason: "Причина", cancel: "Отмена", confirm: "Подтвердить",
    reasons: ["Нет в наличии", "Невозможно приготовить", "Дубликат"],
    allDay: "Всего", nothingOpen: "Нет открытых заказов",
    table: "Стол", takeAway: "С собой", delivery: "Доставка", walkIn: "В зале",
    course: "Подача", page: "Стр.", of: "из",
    selectFirst: "Сначала выберите заказ: его номер, затем Enter", undo: "Отменить", bumped: "Готово", late: "ОПАЗДЫВАЕТ",
    continued: "продолжение", more: "ещё", continues: "продолжение далее", queued: "ждёт связи", notDone: "Не выполнено",
    soundOn: "Звук вкл.", soundOff: "Звук выкл.", enableSound: "Нажмите, чтобы включить звук",
    done: "готово", void: "ОТМЕНА",
    order: "Заказ", status: "Статус", age: "Время", where: "Где",
    unknownEndpoint: "Неизвестная станция", chooseScreen: "Выберите экран",
    failed: "Ошибка", printer: "Принтер", retryPrinter: "Повторить",
    posRef: "Касса",
    printerLine: "Принтер {name}: {state}",
    printerStates: {
      offline: "не в сети", timeout: "не отвечает", disconnected: "связь потеряна", paper_out: "нет бумаги",
      cover_open: "открыта крышка", error: "ошибка принтера", unknown: "неизвестно",
    },
    kitchen: { waiting: "На кухне", cooking: "Готовится", ready: "Готово", refused: "Отказ", cancelled: "Отменён" },
    recalled: "ВОЗВРАЩЁН", refusedBecause: "Отказ: {reason}",
    titleStation: "{name} — kds станция", titleView: "{name} — kds", screens: "Экраны",
    textSize: "Размер текста",
    held: "ЖДЁТ", startsIn: "начать через {time}", fireCourse: "Подать {course}-ю подачу", scheduledFor: "Запланирован {time}",
    statuses: {
      unknown: "неизвестно", created: "новый", sent: "отправлен", delivered: "получен", refused: "отказ",
      failed: "ошибка печати", accepted: "готовится", processSkipped: "отменён", processed: "готов",
    },
  },
};

export const LANGUAGES = Object.keys(LABELS);

let current = LABELS.en;

/** Choose the language: `?lang=` wins over the configured one; unknown → en. */
export function setLanguage(configured) {
  const asked = new URLSearchParams(location.search).get("lang");
  const lang = [asked, configured, "en"].find((l) => LANGUAGES.includes(l));
  current = LABELS[lang];
  document.documentElement.lang = lang;
  return lang;
}

/** The label for `key` in the current language (English as fallback). */
export function t(key) {
  return current[key] ?? LABELS.en[key] ?? key;
}

/** The label for `key` with `{name}` placeholders filled from `values` (text, never HTML). */
export function tf(key, values) {
  return String(t(key)).replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
}

/** A label from a group of labels (`printerStates`, `kitchen`), else `fallback`. */
export function tOf(group, key, fallback = key) {
  return (current[group] && current[group][key]) ?? (LABELS.en[group] && LABELS.en[group][key]) ?? fallback;
}

/** The label of an order status. */
export function tStatus(status) {
  return current.statuses[status] ?? LABELS.en.statuses[status] ?? status;
}
