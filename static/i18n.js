// Russian and English strings. Elements carry data-i18n="key" and get the text;
// the language comes from the switch (kept in localStorage), else the browser.
const dict = {
  en: {
    title: "Call desk", supervisorTitle: "Call desk — supervisor",
    login: "Login", password: "Password", signIn: "Sign in", signOut: "Sign out",
    wrongLogin: "Wrong login or password", loginFailed: "Cannot sign in right now",
    connected: "Online", connecting: "Connecting…", reconnecting: "Reconnecting…",
    phoneRegistered: "Phone registered", phoneNotRegistered: "Phone not registered",
    available: "Available", away: "Away",
    waiting: "Waiting for calls", ringing: "Incoming call", talking: "Talking", ended: "Ended", missed: "Missed",
    newCaller: "New caller", company: "Company", manager: "Personal manager", number: "Number",
    callerId: "Caller ID", line: "Line", lookupUnavailable: "Lookup unavailable: the caller could not be checked",
    script: "Script", required: "required",
    liveCalls: "Live calls", operators: "Operators", noCalls: "No live calls", noOperators: "No operators",
    colState: "State", colCaller: "Caller", colLine: "Line", colOperator: "Operator", colDuration: "Duration",
    colName: "Name", colStatus: "Status", colPage: "Page", colPhone: "Phone",
    st_available: "available", st_ringing: "ringing", st_talking: "talking", st_wrapup: "wrap-up", st_away: "away", st_offline: "offline",
    yes: "yes", no: "no", supervisorOnly: "This page is for supervisors and admins.",
    operatorPage: "Operator page", supervisorPage: "Supervisor page",
    promises: "Promises", noPromises: "No open promises", promise: "Promise", callBack: "Call back",
    overdue: "overdue", kept: "Kept", keptResult: "What was the result?", save: "Save", cancel: "Cancel",
    back: "Back", next: "Next", closeCall: "Close call", open: "Open", keysHint: "Enter: next step · 1–9: choose",
    wrapupPending: "Wrap-up: record the outcome and close the call to take the next one",
    wrapupOther: "Wrap-up still owed for", wrapupTitle: "Wrap-up",
    saved: "Saved", unsaved: "Not saved yet", saveError: "Not saved", presetSuggested: "The line's source: confirm with Enter or pick another",
    unsavedCount: "Unsaved answers", offline: "no connection",
    sourceMismatch: "differs from the line's source", rangeGiven: "range given", rangeOnly: "name the range, never a single price",
    pickProduct: "Pick a product to see its price range", dueResolved: "Due",
    unit_h: "h", unit_m: "min", unit_d: "d", today: "today", tomorrow: "tomorrow",
    missingItems: "Fill in before closing:", neededToClose: "needed to close the call",
    unsavedAnswers: "Some answers are not saved yet; they are being resent. Try again in a moment.",
    wrapupFailed: "Could not close the call",
    lastCalls: "Last calls", noHistory: "No earlier calls", openPromises: "Open promises", notes: "Notes",
    addNote: "Add a note about the caller", noteAdd: "Add", change: "Change",
    o_deal: "Potential deal", o_interest: "Interest", o_not_prospective: "Not prospective", o_refusal: "Refusal", o_missed: "Missed",
    it_deal: "Potential deal", it_interest: "Interest",
    stage_first_call: "First call", stage_needs_identified: "Needs identified", stage_meeting: "Meeting / presentation", stage_contract: "Contract", stage_payment: "Payment",
    outcome_deal: "Potential deal", outcome_interest: "Interest", outcome_not_prospective: "Not prospective", outcome_refusal: "Refusal",
    reason_unreachable: "Unreachable", reason_competitor: "Lost to a competitor", reason_not_prospective: "Not prospective",
    f_outcome: "Outcome", f_refusal_reason: "Reason for refusal", f_stage: "Funnel stage", f_note: "Note about the caller",
    "b_contact.name": "Full name", "b_contact.company": "Company", b_source: "Source", "b_promise.due": "Promise deadline",
    "b_refusal.reason": "Reason for refusal", b_outcome: "Outcome",
    colStep: "Step", colAnswers: "Answers", overduePromises: "Overdue promises", noOverdue: "No overdue promises",
    forceClose: "Force close", forceReason: "Why close it without the operator?", forced: "closed",
    mismatch: "source differs from the line", colOwner: "Owner", colDue: "Due",
  },
  ru: {
    title: "Рабочее место оператора", supervisorTitle: "Рабочее место — супервизор",
    login: "Логин", password: "Пароль", signIn: "Войти", signOut: "Выйти",
    wrongLogin: "Неверный логин или пароль", loginFailed: "Сейчас войти не удаётся",
    connected: "В сети", connecting: "Подключение…", reconnecting: "Переподключение…",
    phoneRegistered: "Телефон зарегистрирован", phoneNotRegistered: "Телефон не зарегистрирован",
    available: "Свободен", away: "Отошёл",
    waiting: "Ожидание звонков", ringing: "Входящий звонок", talking: "Разговор", ended: "Завершён", missed: "Пропущен",
    newCaller: "Новый клиент", company: "Компания", manager: "Персональный менеджер", number: "Номер",
    callerId: "Имя абонента", line: "Линия", lookupUnavailable: "Поиск клиента недоступен: данные не проверены",
    script: "Скрипт", required: "обязательно",
    liveCalls: "Текущие звонки", operators: "Операторы", noCalls: "Нет текущих звонков", noOperators: "Нет операторов",
    colState: "Состояние", colCaller: "Абонент", colLine: "Линия", colOperator: "Оператор", colDuration: "Длительность",
    colName: "Имя", colStatus: "Статус", colPage: "Страница", colPhone: "Телефон",
    st_available: "свободен", st_ringing: "звонок", st_talking: "разговор", st_wrapup: "обработка", st_away: "отошёл", st_offline: "не в сети",
    yes: "да", no: "нет", supervisorOnly: "Эта страница для супервизоров и администраторов.",
    operatorPage: "Страница оператора", supervisorPage: "Страница супервизора",
    promises: "Обещания", noPromises: "Нет открытых обещаний", promise: "Обещание", callBack: "Перезвонить",
    overdue: "просрочено", kept: "Выполнено", keptResult: "Каков результат?", save: "Сохранить", cancel: "Отмена",
    back: "Назад", next: "Далее", closeCall: "Закрыть звонок", open: "Открыть", keysHint: "Enter: следующий шаг · 1–9: выбор",
    wrapupPending: "Итог звонка: отметьте результат и закройте звонок, чтобы принять следующий",
    wrapupOther: "Не закрыт итог звонка", wrapupTitle: "Итог звонка",
    saved: "Сохранено", unsaved: "Ещё не сохранено", saveError: "Не сохранено", presetSuggested: "Источник линии: подтвердите клавишей Enter или выберите другой",
    unsavedCount: "Несохранённые ответы", offline: "нет связи",
    sourceMismatch: "не совпадает с источником линии", rangeGiven: "назван диапазон", rangeOnly: "называйте диапазон, а не одну цену",
    pickProduct: "Выберите товар, чтобы увидеть диапазон цен", dueResolved: "Срок",
    unit_h: "ч", unit_m: "мин", unit_d: "дн", today: "сегодня", tomorrow: "завтра",
    missingItems: "Перед закрытием заполните:", neededToClose: "нужно, чтобы закрыть звонок",
    unsavedAnswers: "Часть ответов ещё не сохранена, они отправляются повторно. Попробуйте через минуту.",
    wrapupFailed: "Не удалось закрыть звонок",
    lastCalls: "Последние звонки", noHistory: "Ранее не звонил", openPromises: "Открытые обещания", notes: "Заметки",
    addNote: "Добавить заметку о клиенте", noteAdd: "Добавить", change: "Изменить",
    o_deal: "Потенциальная сделка", o_interest: "Интерес", o_not_prospective: "Неперспективный", o_refusal: "Отказ", o_missed: "Пропущен",
    it_deal: "Потенциальная сделка", it_interest: "Интерес",
    stage_first_call: "Первый звонок", stage_needs_identified: "Потребность выявлена", stage_meeting: "Встреча / презентация", stage_contract: "Договор", stage_payment: "Оплата",
    outcome_deal: "Потенциальная сделка", outcome_interest: "Интерес", outcome_not_prospective: "Неперспективный", outcome_refusal: "Отказ",
    reason_unreachable: "Недозвон", reason_competitor: "Ушёл к конкуренту", reason_not_prospective: "Неперспективный",
    f_outcome: "Итог", f_refusal_reason: "Причина отказа", f_stage: "Этап воронки", f_note: "Заметка о клиенте",
    "b_contact.name": "Имя и фамилия", "b_contact.company": "Компания", b_source: "Источник", "b_promise.due": "Срок обещания",
    "b_refusal.reason": "Причина отказа", b_outcome: "Итог",
    colStep: "Шаг", colAnswers: "Ответы", overduePromises: "Просроченные обещания", noOverdue: "Нет просроченных обещаний",
    forceClose: "Закрыть принудительно", forceReason: "Почему закрыть без оператора?", forced: "закрыт",
    mismatch: "источник не совпадает с линией", colOwner: "Ответственный", colDue: "Срок",
  },
};

const KEY = "desk.lang";
let lang = pickLang();
const listeners = [];

function pickLang() {
  const saved = localStorage.getItem(KEY);
  if (saved && dict[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";
}

export function t(key) {
  return (dict[lang] && dict[lang][key]) || dict.en[key] || key;
}

export function currentLang() { return lang; }

export function setLang(l) {
  if (!dict[l]) return;
  lang = l;
  localStorage.setItem(KEY, l);
  applyI18n(document);
  for (const f of listeners) f(l);
}

export function onLangChange(f) { listeners.push(f); }

// applyI18n fills every [data-i18n] element's text and [data-i18n-placeholder].
export function applyI18n(root) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

// bindLangSwitch wires a <select> to the language.
export function bindLangSwitch(select) {
  select.value = lang;
  select.addEventListener("change", () => setLang(select.value));
}
