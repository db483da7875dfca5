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
    o_deal: "Potential deal", o_interest: "Interest", o_not_prospective: "Not prospective", o_refusal: "Refusal", o_missed: "Missed", o_unreached: "Not reached",
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
    // The supervisor's board, whispers and reports.
    colContact: "Contact", queue: "Queue", colRingsAt: "Ringing at", colRinging: "Ringing for", colWaiting: "Waiting",
    colTried: "Tried", noQueue: "Nobody is waiting", missedToday: "Missed today", colTime: "Time", colCallback: "Callback",
    noMissed: "No missed calls today", colCall: "Call", colToday: "Today",
    todayLegend: "Today: answered / missed · average talk · promises kept / overdue",
    whispers: "Whispers", whisper: "Whisper", whisperTo: "To", whisperPlaceholder: "A short message pinned on the operator's page",
    whisperSend: "Send", noWhispers: "No whispers yet", sent: "sent", acknowledged: "acknowledged",
    whisperTitle: "Message from your supervisor", whisperFrom: "From", whisperOk: "OK",
    forceAway: "Set away", makeAvailable: "Set available", pageClosed: "page closed", expiresIn: "expires in", expired: "expired",
    focus: "Focus", focusAll: "Everyone, every line", lines: "Lines", focusLineNote: "Operators are shown all: they take every line.",
    reassign: "Reassign…", reports: "Reports", reassignTitle: "Reassign to another manager", reassignKind: "What",
    kind_promise: "Promises", kind_interest: "Interests", kind_contact: "Contacts (personal manager)",
    reassignFrom: "From manager", reassignTo: "To manager", reassignAll: "All his open items", reassignSelected: "Only these ids",
    reassignIdsHint: "ids, one a line (ticked overdue promises are filled in)", reassignDo: "Reassign", close: "Close",
    reassignNeedIds: "List the ids to move", reassignNeedFrom: "Pick the manager to move from", reassignNeedTo: "Pick another manager to move to",
    moved: "Moved", pickForReassign: "Pick for a reassignment", pool: "pool",
    out_timeout: "no answer", out_rejected: "rejected", out_cancelled: "cancelled", out_answered: "answered",
    cb_none: "no callback", cb_open: "callback due", cb_overdue: "callback overdue", cb_kept: "called back",
    reportsTitle: "Call desk — reports", managerFilter: "Manager", dateFrom: "From", dateTo: "To", allManagers: "All managers", allLines: "All lines",
    apply: "Show", badRange: "The end date must not be before the start date", reportFailed: "Could not build the report",
    noRows: "Nothing in this range", chartsUnavailable: "Charts could not be loaded",
    report_calls: "Calls", report_sources: "Sources", report_funnel: "Funnel", report_promises: "Promises kept",
    report_meetings: "Meetings",
    chartPerDay: "Calls per day: answered and missed", chartPerHour: "Calls by hour of day", chartSources: "Leads per source and cost per lead",
    chartFunnel: "Interests by funnel stage: reached and lost", chartKept: "Promises per manager: on time, late, missed, open",
    chartMeetings: "Meetings set per manager",
    rt_calls_per_day: "Per day", rt_calls_per_hour: "Per hour", rt_sources_channels: "Per source", rt_sources_lines: "Per line",
    rt_funnel_open: "Open interests by manager and stage", rt_funnel_conversion: "Conversion between stages",
    rt_funnel_loss: "Lost at each stage", rt_funnel_reasons: "Refusal reasons", rt_promises_kept: "Kept-rate per manager",
    rt_meetings_per_manager: "Per manager",
    rc_date: "Date", rc_hour: "Hour", rc_calls: "Calls", rc_answered: "Answered", rc_missed: "Missed",
    rc_abandoned_while_ringing: "Abandoned while ringing", rc_avg_answer_seconds: "Avg. time to answer, s",
    rc_source: "Source", rc_leads: "Leads", rc_mismatches: "Source differs", rc_mismatch_share: "Share differing",
    rc_cost: "Cost", rc_cost_per_lead: "Cost per lead", rc_currency: "Currency", rc_line: "Line", rc_preset_source: "Line's source",
    rc_source_named: "Source named", rc_manager: "Manager", rc_total: "Total", rc_from_stage: "From stage", rc_to_stage: "To stage",
    rc_reached_from: "Reached from", rc_reached_to: "Reached next", rc_rate: "Rate", rc_stage: "Stage", rc_lost: "Lost",
    rc_reason: "Reason", rc_count: "Count", rc_on_time: "On time", rc_late: "Late", rc_open: "Open", rc_reached: "Reached",
    rc_meetings: "Meetings", rc_first_calls: "First calls", rc_meetings_on_first_call: "Meetings on a first call",
    rc_first_call_rate: "First-call goal rate",
    v_pool: "pool", v_unknown: "unknown", v_unspecified: "unspecified",
    // Media mode: supervisors on a call, recordings, callbacks from the desk.
    monitorLabel: "Listen in", mon_listen: "Listen", mon_whisper: "Whisper", mon_barge: "Barge", mon_stop: "Stop",
    monHint_listen: "You hear both; nobody hears you", monHint_whisper: "You hear both; only the operator hears you",
    monHint_barge: "All three hear each other",
    mode_listen: "listening", mode_whisper: "whispering", mode_barge: "in the call",
    ms_ringing: "ringing his phone", ms_joined: "on the call", ms_switched: "on the call",
    monitorFailed: "Could not join", noAudio: "proxy mode: no audio", rec: "REC", dir_callback: "callback",
    cb_busy: "Customer busy: the promise stays open", cb_declined: "Customer declined: the promise stays open",
    cb_no_answer: "Customer did not answer: the promise stays open",
    cb_not_reached: "Customer not reached (SIP {status}): the promise stays open",
    cb_busy_short: "Busy", cb_declined_short: "Declined", cb_no_answer_short: "No answer",
    cb_not_reached_short: "Not reached (SIP {status})", cb_you_missed_short: "Your phone did not answer",
    recentCalls: "Recent calls", colEnded: "Ended", colRecording: "Recording", noRecent: "No calls answered in the last 24 hours",
    play: "Play", playRecording: "Play the recording", recording: "Call recording",
    recentFailed: "Could not read the earlier calls", recordingUnavailable: "No recording to play (not kept, or past its retention)",
    monOp_listen: "is listening to the call", monOp_whisper: "is coaching you (the caller does not hear)", monOp_barge: "joined the call",
    callBackNow: "Call back", callBackCalling: "Calling your phone…", callBackFailed: "Could not call back",
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
    o_deal: "Потенциальная сделка", o_interest: "Интерес", o_not_prospective: "Неперспективный", o_refusal: "Отказ", o_missed: "Пропущен", o_unreached: "Недозвон",
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
    // Доска супервизора, подсказки операторам и отчёты.
    colContact: "Клиент", queue: "Очередь", colRingsAt: "Звонит у", colRinging: "Звонит", colWaiting: "Ждёт",
    colTried: "Пробовали", noQueue: "Никто не ждёт", missedToday: "Пропущенные сегодня", colTime: "Время", colCallback: "Перезвон",
    noMissed: "Сегодня пропущенных нет", colCall: "Звонок", colToday: "Сегодня",
    todayLegend: "Сегодня: принято / пропущено · средний разговор · обещания выполнены / просрочены",
    whispers: "Подсказки", whisper: "Подсказка", whisperTo: "Кому", whisperPlaceholder: "Короткое сообщение на экран оператора",
    whisperSend: "Отправить", noWhispers: "Подсказок пока нет", sent: "отправлено", acknowledged: "прочитано",
    whisperTitle: "Сообщение от супервизора", whisperFrom: "От", whisperOk: "OK",
    forceAway: "Перевести в «отошёл»", makeAvailable: "Сделать свободным", pageClosed: "страница закрыта", expiresIn: "истекает через", expired: "истекла",
    focus: "Фокус", focusAll: "Все операторы и линии", lines: "Линии", focusLineNote: "Операторы показаны все: они принимают любую линию.",
    reassign: "Передать…", reports: "Отчёты", reassignTitle: "Передать другому менеджеру", reassignKind: "Что",
    kind_promise: "Обещания", kind_interest: "Интересы", kind_contact: "Клиенты (персональный менеджер)",
    reassignFrom: "От менеджера", reassignTo: "Менеджеру", reassignAll: "Всё открытое у него", reassignSelected: "Только эти id",
    reassignIdsHint: "id по одному в строке (отмеченные просроченные обещания подставлены)", reassignDo: "Передать", close: "Закрыть",
    reassignNeedIds: "Перечислите id", reassignNeedFrom: "Выберите, от кого передать", reassignNeedTo: "Выберите другого менеджера",
    moved: "Передано", pickForReassign: "Отметить для передачи", pool: "общий пул",
    out_timeout: "не ответил", out_rejected: "отклонил", out_cancelled: "отменён", out_answered: "ответил",
    cb_none: "перезвона нет", cb_open: "перезвон назначен", cb_overdue: "перезвон просрочен", cb_kept: "перезвонили",
    reportsTitle: "Рабочее место — отчёты", managerFilter: "Менеджер", dateFrom: "С", dateTo: "По", allManagers: "Все менеджеры", allLines: "Все линии",
    apply: "Показать", badRange: "Дата окончания раньше даты начала", reportFailed: "Не удалось построить отчёт",
    noRows: "За этот период ничего нет", chartsUnavailable: "Не удалось загрузить графики",
    report_calls: "Звонки", report_sources: "Источники", report_funnel: "Воронка", report_promises: "Выполнение обещаний",
    report_meetings: "Встречи",
    chartPerDay: "Звонки по дням: принятые и пропущенные", chartPerHour: "Звонки по часам суток", chartSources: "Лиды по источникам и цена лида",
    chartFunnel: "Интересы по этапам воронки: дошли и потеряны", chartKept: "Обещания по менеджерам: в срок, с опозданием, сорваны, открыты",
    chartMeetings: "Назначенные встречи по менеджерам",
    rt_calls_per_day: "По дням", rt_calls_per_hour: "По часам", rt_sources_channels: "По источникам", rt_sources_lines: "По линиям",
    rt_funnel_open: "Открытые интересы по менеджерам и этапам", rt_funnel_conversion: "Конверсия между этапами",
    rt_funnel_loss: "Потери на этапах", rt_funnel_reasons: "Причины отказов", rt_promises_kept: "Выполнение обещаний по менеджерам",
    rt_meetings_per_manager: "По менеджерам",
    rc_date: "Дата", rc_hour: "Час", rc_calls: "Звонки", rc_answered: "Принято", rc_missed: "Пропущено",
    rc_abandoned_while_ringing: "Сброшено во время звонка", rc_avg_answer_seconds: "Ср. время ответа, с",
    rc_source: "Источник", rc_leads: "Лиды", rc_mismatches: "Источник не совпал", rc_mismatch_share: "Доля несовпадений",
    rc_cost: "Затраты", rc_cost_per_lead: "Цена лида", rc_currency: "Валюта", rc_line: "Линия", rc_preset_source: "Источник линии",
    rc_source_named: "Источник назван", rc_manager: "Менеджер", rc_total: "Всего", rc_from_stage: "С этапа", rc_to_stage: "На этап",
    rc_reached_from: "Дошли до этапа", rc_reached_to: "Дошли до следующего", rc_rate: "Доля", rc_stage: "Этап", rc_lost: "Потеряно",
    rc_reason: "Причина", rc_count: "Количество", rc_on_time: "В срок", rc_late: "С опозданием", rc_open: "Открыто", rc_reached: "Дошли",
    rc_meetings: "Встречи", rc_first_calls: "Первые звонки", rc_meetings_on_first_call: "Встречи с первого звонка",
    rc_first_call_rate: "Цель первого контакта",
    v_pool: "общий пул", v_unknown: "не указан", v_unspecified: "не указана",
    // Режим медиа: супервизор на звонке, записи, обратные звонки с рабочего места.
    monitorLabel: "Подключение к звонку", mon_listen: "Слушать", mon_whisper: "Подсказывать", mon_barge: "Вмешаться", mon_stop: "Отключиться",
    monHint_listen: "Вы слышите обоих, вас не слышит никто", monHint_whisper: "Вы слышите обоих, вас слышит только оператор",
    monHint_barge: "Все трое слышат друг друга",
    mode_listen: "слушает", mode_whisper: "подсказывает", mode_barge: "в разговоре",
    ms_ringing: "звоним на его телефон", ms_joined: "на линии", ms_switched: "на линии",
    monitorFailed: "Не удалось подключиться", noAudio: "режим прокси: звука нет", rec: "запись", dir_callback: "обратный звонок",
    cb_busy: "Клиент занят: обещание остаётся открытым", cb_declined: "Клиент отклонил звонок: обещание остаётся открытым",
    cb_no_answer: "Клиент не ответил: обещание остаётся открытым",
    cb_not_reached: "Не удалось дозвониться (SIP {status}): обещание остаётся открытым",
    cb_busy_short: "Занято", cb_declined_short: "Отклонён", cb_no_answer_short: "Не ответил",
    cb_not_reached_short: "Не дозвонились (SIP {status})", cb_you_missed_short: "Ваш телефон не ответил",
    recentCalls: "Недавние звонки", colEnded: "Завершён", colRecording: "Запись", noRecent: "За последние 24 часа принятых звонков не было",
    play: "Прослушать", playRecording: "Прослушать запись", recording: "Запись разговора",
    recentFailed: "Не удалось загрузить прошлые звонки", recordingUnavailable: "Записи нет (не сохранялась или срок хранения истёк)",
    monOp_listen: "слушает разговор", monOp_whisper: "подсказывает (клиент не слышит)", monOp_barge: "участвует в разговоре",
    callBackNow: "Перезвонить", callBackCalling: "Звоним на ваш телефон…", callBackFailed: "Не удалось перезвонить",
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
