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
