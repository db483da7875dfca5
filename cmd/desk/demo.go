package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/yamlfile"
)

// The demo seed: a week of plausible calls, records, interests, promises, meetings
// and notes for the demo operators, so a newcomer sees a full board and full
// reports at once. It writes through the store only, is deterministic for a given
// now (a fixed PCG seed), and runs once: the marker contact is written last and a
// second run that finds it does nothing.

// demoMarkerPhone is the phone of the demo contact written last.
const demoMarkerPhone = "+79037100024"

// demoOperators take the demo calls (see demoUsers).
var demoOperators = []string{"maria", "oleg"}

type demoPerson struct {
	Name, Company, Position, Email, Size, Industry string
}

// demoPeople are the demo callers; the last one's phone is demoMarkerPhone.
var demoPeople = []demoPerson{
	{"Алексей Петров", "ООО «СтройМаркет»", "Директор по логистике", "petrov@stroymarket.ru", "51-200", "retail"},
	{"Елена Кузнецова", "АО «ТехноПарк»", "Начальник склада", "e.kuznetsova@technopark.ru", "201-1000", "manufacturing"},
	{"Дмитрий Соколов", "ООО «ЛогистикПро»", "Руководитель проекта", "sokolov@logisticpro.ru", "51-200", "logistics"},
	{"Ольга Морозова", "ИП Морозова", "Владелец", "", "11-50", "ecommerce"},
	{"Сергей Волков", "ООО «Агроснаб»", "Заместитель директора", "volkov@agrosnab.ru", "51-200", "wholesale"},
	{"Наталья Лебедева", "ООО «Фармадис»", "Менеджер по закупкам", "lebedeva@farmadis.ru", "201-1000", "wholesale"},
	{"Андрей Новиков", "ООО «Северный терминал»", "Операционный директор", "novikov@sevterminal.ru", "201-1000", "logistics"},
	{"Татьяна Павлова", "ООО «Детский мир Регион»", "Начальник отдела снабжения", "pavlova@dmregion.ru", "1000+", "retail"},
	{"Михаил Козлов", "АО «Уралмаш-Комплект»", "Главный инженер", "kozlov@uralmash-k.ru", "201-1000", "manufacturing"},
	{"Ирина Васильева", "ООО «Вкусвилл-Опт»", "Руководитель склада", "vasilyeva@vv-opt.ru", "51-200", "wholesale"},
	{"Владимир Зайцев", "ООО «Спецодежда Плюс»", "Генеральный директор", "zaitsev@specplus.ru", "11-50", "manufacturing"},
	{"Светлана Попова", "ООО «Маркет Экспресс»", "Директор по развитию", "popova@mexpress.ru", "51-200", "ecommerce"},
	{"Николай Смирнов", "АО «Балтийская логистика»", "Начальник транспортного отдела", "smirnov@baltlog.ru", "1000+", "logistics"},
	{"Екатерина Фёдорова", "ООО «Мебельград»", "Коммерческий директор", "fedorova@mebelgrad.ru", "51-200", "manufacturing"},
	{"Павел Михайлов", "ООО «АвтоДеталь»", "Руководитель закупок", "mikhailov@avtodetal.ru", "201-1000", "wholesale"},
	{"Анастасия Егорова", "ООО «ЭкоПродукт»", "Финансовый директор", "egorova@ecoproduct.ru", "51-200", "manufacturing"},
	{"Игорь Николаев", "ООО «Сибирский холод»", "Директор", "nikolaev@sibholod.ru", "51-200", "logistics"},
	{"Мария Орлова", "ООО «Книжный двор»", "Администратор", "", "11-50", "retail"},
	{"Роман Андреев", "ООО «ТрансКарго»", "Начальник склада", "andreev@transcargo.ru", "51-200", "logistics"},
	{"Юлия Макарова", "ООО «Косметик Опт»", "Руководитель отдела логистики", "makarova@cosmeticopt.ru", "201-1000", "wholesale"},
	{"Артём Захаров", "ООО «ПромИнструмент»", "Директор по закупкам", "zakharov@prominstr.ru", "201-1000", "wholesale"},
	{"Галина Степанова", "ИП Степанова", "Владелец", "", "1-10", "retail"},
	{"Денис Яковлев", "ООО «Пекарня на углу»", "Управляющий", "", "1-10", "other"},
	{"Ксения Белова", "ООО «ОптТорг Юг»", "Заместитель директора по логистике", "belova@opttorg-yug.ru", "51-200", "wholesale"},
	{"Виктор Гусев", "ООО «Гидромаш»", "Начальник отдела МТС", "gusev@gidromash.ru", "201-1000", "manufacturing"},
}

// demoStory is where a demo contact's interest goes: the stage each of his
// stage-moving calls sets, in order, then how it ends.
type demoStory struct {
	kind   string   // deal or interest
	stages []string // one answered call per entry
	end    string   // open, won or lost
	reason string   // refusal reason when lost
	// lossCall is true when the loss is a call of its own after the stages.
	lossCall bool
	// outcome overrides the wrap-up outcome of the loss (not_prospective).
	outcome string
}

const (
	stFirst   = "first_call"
	stNeeds   = "needs_identified"
	stMeeting = "meeting"
	stContr   = "contract"
	stPay     = "payment"
)

// demoStories are the contacts' stories, by index of demoPeople: every funnel
// stage has open interests, two deals are won at payment, and a few interests
// are lost with each refusal reason.
var demoStories = []demoStory{
	{kind: "interest", stages: []string{stFirst}, end: "open"},
	{kind: "deal", stages: []string{stFirst}, end: "open"},
	{kind: "interest", stages: []string{stFirst}, end: "open"},
	{kind: "interest", stages: []string{stFirst}, end: "open"},
	{kind: "deal", stages: []string{stFirst}, end: "open"},
	{kind: "interest", stages: []string{stFirst, stNeeds}, end: "open"},
	{kind: "deal", stages: []string{stFirst, stNeeds}, end: "open"},
	{kind: "interest", stages: []string{stNeeds}, end: "open"},
	{kind: "interest", stages: []string{stFirst, stNeeds}, end: "open"},
	{kind: "interest", stages: []string{stFirst, stNeeds, stMeeting}, end: "open"},
	{kind: "interest", stages: []string{stMeeting}, end: "open"}, // a meeting set on the first call
	{kind: "deal", stages: []string{stMeeting}, end: "open"},     // a meeting set on the first call
	{kind: "deal", stages: []string{stFirst, stNeeds, stMeeting, stContr}, end: "open"},
	{kind: "interest", stages: []string{stNeeds, stMeeting, stContr}, end: "open"},
	{kind: "deal", stages: []string{stFirst, stNeeds, stMeeting, stContr, stPay}, end: "won"},
	{kind: "deal", stages: []string{stNeeds, stMeeting, stContr, stPay}, end: "won"},
	{kind: "interest", stages: []string{stFirst, stNeeds, stMeeting, stContr, stPay}, end: "open"},
	{kind: "interest", stages: []string{stFirst, stNeeds}, end: "lost", reason: desk.ReasonUnreachable, lossCall: true},
	{kind: "deal", stages: []string{stFirst}, end: "lost", reason: desk.ReasonUnreachable, lossCall: true},
	{kind: "deal", stages: []string{stFirst, stNeeds, stMeeting}, end: "lost", reason: desk.ReasonCompetitor, lossCall: true},
	{kind: "deal", stages: []string{stFirst, stNeeds, stMeeting, stContr}, end: "lost", reason: desk.ReasonCompetitor, lossCall: true},
	{kind: "interest", stages: []string{stFirst}, end: "lost", reason: desk.ReasonNotProspective, outcome: desk.OutcomeNotProspective},
	{kind: "interest", stages: []string{stFirst}, end: "lost", reason: desk.ReasonNotProspective, outcome: desk.OutcomeRefusal},
	{kind: "interest", stages: []string{stFirst, stNeeds}, end: "open"},
	{kind: "deal", stages: []string{stFirst}, end: "open"},
}

// demoAnnaStory is the story of the built-in demo contact (demoContact), when present.
var demoAnnaStory = demoStory{kind: "deal", stages: []string{stFirst, stNeeds}, end: "open"}

var (
	demoProducts = []struct{ product, need string }{
		{"scanner", "Терминалы сбора данных, 6 шт."},
		{"racking", "Паллетные стеллажи, 40 секций"},
		{"wms-basic", "WMS Basic на один склад"},
		{"scanner", "Сканеры штрихкода для приёмки, 10 шт."},
		{"racking", "Стеллажи для мезонина"},
	}
	demoTasks = []string{
		"Навести порядок с учётом остатков на складе 2000 м²",
		"Ускорить сборку заказов интернет-магазина",
		"Переезд на новый склад, нужно оснастить под ключ",
		"Сократить пересорт при отгрузке",
		"Адресное хранение для 3 000 SKU",
		"Инвентаризация без остановки склада",
	}
	demoNotes = []string{
		"Решение принимает вместе с финансовым директором",
		"Бюджет утверждают в конце квартала",
		"Сейчас работают на Excel, устали от пересорта",
		"Просил прислать кейсы из своей отрасли",
		"Сравнивает с предложением конкурента",
		"Удобнее связываться в Telegram",
		"Склад работает в две смены, звонить до 11:00",
		"Интересует лизинг оборудования",
	}
	demoPromiseWhat = []string{
		"Проверить наличие и перезвонить",
		"Отправить коммерческое предложение",
		"Уточнить сроки поставки",
		"Прислать спецификацию и счёт",
		"Согласовать дату демонстрации",
	}
	demoMeetingFormats = []string{"office", "client_site", "online"}
	demoOtherSources   = []string{"catalogue", "tv_radio", "referral"}
)

// demoContactSeed is one demo caller while the seed runs.
type demoContactSeed struct {
	idx      int
	contact  *desk.Contact
	story    demoStory
	line     string
	source   string
	steps    int // stage-moving answered calls still to place
	lastStep time.Time
	started  bool
	interest *desk.Interest
	product  string
	need     string
	lost     bool
	existing bool // the built-in demo contact: not rewritten
}

// demoSlot is one call of the week.
type demoSlot struct {
	at     time.Time
	missed string // "", "abandoned", "timeout" or "no operator"
}

// seedDemo writes a week of demo data ending at now, in loc's business hours.
// It does nothing when the marker contact exists.
func seedDemo(ctx context.Context, store desk.Store, now time.Time, loc *time.Location) error {
	if _, err := store.ContactByPhone(ctx, demoMarkerPhone); err == nil {
		return nil
	} else if !errors.Is(err, desk.ErrNotFound) {
		return fmt.Errorf("demo seed: %w", err)
	}
	if loc == nil {
		loc = time.UTC
	}
	sd := &demoSeeder{store: store, now: now, loc: loc, rng: rand.New(rand.NewPCG(20250110, 4)),
		cfg: yamlfile.DefaultConfig(), openCallbacks: map[string]*desk.Promise{}}
	if err := sd.run(ctx); err != nil {
		return fmt.Errorf("demo seed: %w", err)
	}
	return nil
}

type demoSeeder struct {
	store    desk.Store
	now      time.Time
	loc      *time.Location
	rng      *rand.Rand
	cfg      *yamlfile.Config
	contacts []*demoContactSeed
	marker   *desk.Contact

	calls, promises, meetings, notes int
	pastDue                          int // promises due before now, for the kept cycle
	openAhead                        int // promises not yet due
	lastCall                         *desk.Call
	lastContact                      *demoContactSeed
	openCallbacks                    map[string]*desk.Promise
}

func (sd *demoSeeder) run(ctx context.Context) error {
	sd.prepareContacts(ctx)
	slots := sd.slots()
	answered := 0
	for _, s := range slots {
		if s.missed == "" {
			answered++
		}
	}
	// The week's last answered calls leave promises still open.
	lateFrom := len(slots)
	for i, n := len(slots)-1, 0; i >= 0 && n < 3; i-- {
		if slots[i].missed == "" {
			lateFrom, n = i, n+1
		}
	}
	remaining := 0
	for _, c := range sd.contacts {
		remaining += c.steps
	}
	for i, s := range slots {
		if s.missed != "" {
			if err := sd.missedCall(ctx, s); err != nil {
				return err
			}
			continue
		}
		// Place a contact's next stage when the slots left are needed for the
		// stages left, else by chance, a day after his last; otherwise a follow-up.
		var c *demoContactSeed
		switch {
		case remaining >= answered:
			c = sd.pickStep(s.at, true)
		case sd.rng.IntN(answered*3) < remaining*4:
			c = sd.pickStep(s.at, false)
		}
		answered--
		if c != nil {
			remaining--
			if err := sd.stepCall(ctx, c, s.at, i >= lateFrom); err != nil {
				return err
			}
			continue
		}
		if f := sd.pickFollowUp(s.at); f != nil {
			if err := sd.followUpCall(ctx, f, s.at, i >= lateFrom); err != nil {
				return err
			}
			continue
		}
		s.missed = "abandoned"
		if err := sd.missedCall(ctx, s); err != nil {
			return err
		}
	}
	if sd.openAhead == 0 && sd.lastCall != nil { // keep one promise ahead, whatever the dice said
		if _, err := sd.promise(ctx, sd.lastContact, sd.lastCall, *sd.lastCall.Ended, true); err != nil {
			return err
		}
	}
	for i, c := range sd.contacts {
		if c.contact.Manager == "" { // a story the week had no room for
			c.contact.Manager = demoOperators[i%len(demoOperators)]
		}
		if c.interest != nil {
			if err := sd.store.SaveInterest(ctx, c.interest); err != nil {
				return err
			}
		}
		if c.existing || c.contact == sd.marker {
			continue
		}
		if err := sd.store.CreateContact(ctx, c.contact); err != nil {
			return err
		}
	}
	// The marker goes last: a seed cut short runs again in full.
	return sd.store.CreateContact(ctx, sd.marker)
}

// prepareContacts builds the demo contacts (and takes in the built-in one).
func (sd *demoSeeder) prepareContacts(ctx context.Context) {
	lines := []string{"sales", "sales", "expo", desk.DefaultLine, "sales", desk.DefaultLine, "expo", "sales"}
	for i, p := range demoPeople {
		phone := fmt.Sprintf("+7903710%04d", i)
		if i == len(demoPeople)-1 {
			phone = demoMarkerPhone
		}
		c := &desk.Contact{ID: fmt.Sprintf("demo-contact-%02d", i), Name: p.Name, Company: p.Company,
			Position: p.Position, Email: p.Email, Phones: []string{phone}}
		line := lines[i%len(lines)]
		src := sd.preset(line)
		if src == "" {
			src = demoOtherSources[i%len(demoOtherSources)]
		}
		switch i { // a couple of callers name another source than the line's preset
		case 1:
			src = "referral"
		case 10:
			src = "catalogue"
		}
		cs := &demoContactSeed{idx: i, contact: c, story: demoStories[i], line: line, source: src}
		sd.contacts = append(sd.contacts, cs)
		if i == len(demoPeople)-1 {
			sd.marker = c
		}
	}
	if anna, err := sd.store.ContactByPhone(ctx, demoContact.Phones[0]); err == nil {
		sd.contacts = append(sd.contacts, &demoContactSeed{idx: len(demoPeople), contact: anna, story: demoAnnaStory,
			line: "sales", source: "web_search", existing: true})
	}
	for _, c := range sd.contacts {
		c.steps = len(c.story.stages)
		if c.story.lossCall {
			c.steps++
		}
		pr := demoProducts[c.idx%len(demoProducts)]
		if c.story.kind == desk.OutcomeDeal {
			c.product, c.need = pr.product, pr.need
		} else {
			c.need = demoTasks[c.idx%len(demoTasks)]
			if c.idx%3 == 0 {
				c.product = pr.product
			}
		}
	}
}

func (sd *demoSeeder) preset(line string) string {
	for _, l := range sd.cfg.Lines {
		if l.Number == line {
			return l.Source
		}
	}
	return ""
}

// slots are the week's calls: every one of the 7 days before today and today up
// to now, business hours, more calls in the mornings, fewer at weekends; about
// one in five missed or abandoned.
func (sd *demoSeeder) slots() []demoSlot {
	hourWeights := []int{3, 5, 5, 4, 2, 3, 3, 2, 1} // 09:00 to 17:59
	total := 0
	for _, w := range hourWeights {
		total += w
	}
	today := time.Date(sd.now.In(sd.loc).Year(), sd.now.In(sd.loc).Month(), sd.now.In(sd.loc).Day(), 0, 0, 0, 0, sd.loc)
	var out []demoSlot
	for d := 7; d >= 0; d-- {
		day := today.AddDate(0, 0, -d)
		n := 13 + sd.rng.IntN(6)
		switch day.Weekday() {
		case time.Saturday:
			n = 4 + sd.rng.IntN(2)
		case time.Sunday:
			n = 3 + sd.rng.IntN(2)
		}
		for range n {
			r := sd.rng.IntN(total)
			h := 0
			for r >= hourWeights[h] {
				r -= hourWeights[h]
				h++
			}
			at := day.Add(time.Duration(9+h)*time.Hour + time.Duration(sd.rng.IntN(3600))*time.Second)
			if d == 0 && !at.Before(sd.now.Add(-5*time.Minute)) {
				continue // today's calls are those already over
			}
			s := demoSlot{at: at}
			switch r := sd.rng.IntN(100); {
			case r < 8:
				s.missed = "abandoned"
			case r < 16:
				s.missed = "timeout"
			case r < 19:
				s.missed = "no operator"
			}
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b demoSlot) int { return a.at.Compare(b.at) })
	return out
}

// pickStep chooses the contact whose next stage happens at t: stages of one
// contact are a day apart unless force, and longer stories go first.
func (sd *demoSeeder) pickStep(t time.Time, force bool) *demoContactSeed {
	var cands []*demoContactSeed
	weight := 0
	for _, c := range sd.contacts {
		if c.steps == 0 || (!force && c.started && t.Sub(c.lastStep) < 20*time.Hour) {
			continue
		}
		cands = append(cands, c)
		weight += c.steps * c.steps * c.steps
	}
	if len(cands) == 0 {
		return nil
	}
	r := sd.rng.IntN(weight)
	for _, c := range cands {
		if r -= c.steps * c.steps * c.steps; r < 0 {
			return c
		}
	}
	return cands[len(cands)-1]
}

// pickFollowUp chooses a contact with an open interest for a call that moves nothing.
func (sd *demoSeeder) pickFollowUp(t time.Time) *demoContactSeed {
	var cands []*demoContactSeed
	for _, c := range sd.contacts {
		if c.started && !c.lost && c.interest != nil && c.interest.State == "open" && t.Sub(c.lastStep) > 2*time.Hour {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[sd.rng.IntN(len(cands))]
}

// operatorFor is who answers a call of c: his manager, or anyone for a new caller.
func (sd *demoSeeder) operatorFor(c *demoContactSeed) string {
	if c.contact.Manager != "" {
		return c.contact.Manager
	}
	return demoOperators[sd.rng.IntN(len(demoOperators))]
}

func other(op string) string {
	if op == demoOperators[0] {
		return demoOperators[1]
	}
	return demoOperators[0]
}

// answeredCall writes the call itself: rung (sometimes after the manager let it
// ring out), answered, talked, ended.
func (sd *demoSeeder) answeredCall(ctx context.Context, c *demoContactSeed, at time.Time, op string) (*desk.Call, error) {
	sd.calls++
	call := &desk.Call{ID: fmt.Sprintf("demo-call-%03d", sd.calls), From: c.contact.Phones[0], FromDisplay: c.contact.Name,
		To: c.line, Line: c.line, Script: yamlfile.DefaultScriptID, ContactID: c.contact.ID, State: desk.CallEnded,
		Started: at, Reason: "caller hung up"}
	if !c.started && !c.existing {
		call.ContactID = "" // the first call comes from an unknown number
	}
	ring := at.Add(time.Second)
	if sd.rng.IntN(10) == 0 { // the first choice let it ring out
		first := op
		op = other(op)
		call.Attempts = append(call.Attempts, desk.Attempt{Operator: first, Started: ring, Outcome: "timeout", Status: 408})
		ring = ring.Add(20 * time.Second)
	}
	answered := ring.Add(time.Duration(3+sd.rng.IntN(13)) * time.Second)
	talk := time.Duration(60+sd.rng.IntN(360)) * time.Second
	if sd.rng.IntN(20) == 0 {
		talk = time.Duration(900+sd.rng.IntN(1500)) * time.Second // a long talk
	}
	ended := answered.Add(talk)
	if sd.rng.IntN(3) == 0 {
		call.Reason = "operator hung up"
	}
	call.Operator, call.Answered, call.Ended = op, &answered, &ended
	call.Attempts = append(call.Attempts, desk.Attempt{Operator: op, Started: ring, Outcome: "answered", Status: 200})
	if err := sd.store.SaveCall(ctx, call); err != nil {
		return nil, err
	}
	sd.lastCall, sd.lastContact = call, c
	return call, nil
}

// stepCall is an answered call that moves c's interest to its next stage (or
// loses it), with its record, wrap-up, promise, meeting and note.
func (sd *demoSeeder) stepCall(ctx context.Context, c *demoContactSeed, at time.Time, late bool) error {
	op := sd.operatorFor(c)
	call, err := sd.answeredCall(ctx, c, at, op)
	if err != nil {
		return err
	}
	done := len(c.story.stages) - c.steps
	if c.story.lossCall {
		done++
	}
	stage, outcome, reason := "", c.story.kind, ""
	switch {
	case done < len(c.story.stages):
		stage = c.story.stages[done]
	default: // the loss call of its own
		stage = c.interest.Stage
	}
	last := c.steps == 1
	if last && c.story.end == "lost" {
		outcome, reason = c.story.outcome, c.story.reason
		if outcome == "" {
			outcome = desk.OutcomeRefusal
		}
		if outcome != desk.OutcomeRefusal {
			reason = ""
		}
	}
	c.steps--
	c.lastStep = at
	return sd.wrapup(ctx, c, call, outcome, stage, reason, true, late)
}

// followUpCall is an answered call of a known contact that moves nothing.
func (sd *demoSeeder) followUpCall(ctx context.Context, c *demoContactSeed, at time.Time, late bool) error {
	call, err := sd.answeredCall(ctx, c, at, sd.operatorFor(c))
	if err != nil {
		return err
	}
	return sd.wrapup(ctx, c, call, c.interest.Type, c.interest.Stage, "", false, late)
}

// wrapup writes what the operator's wrap-up of call writes: the record with its
// answers, the contact (first call), the interest's move, a promise, a meeting,
// a note and the contact's history.
func (sd *demoSeeder) wrapup(ctx context.Context, c *demoContactSeed, call *desk.Call, outcome, stage, reason string, moves, lateInWeek bool) error {
	closed := call.Ended.Add(time.Duration(30+sd.rng.IntN(150)) * time.Second)
	first := !c.started
	a := map[string]string{"source": c.source, "interest.type": c.story.kind, "outcome": outcome}
	if stage != "" {
		a["stage"] = stage
	}
	if reason != "" {
		a["refusal.reason"] = reason
	}
	if c.product != "" && c.story.kind == desk.OutcomeDeal {
		a["need.product"] = c.need
	} else {
		a["need.task"] = c.need
	}
	if first {
		p := demoPeople[min(c.idx, len(demoPeople)-1)]
		a["contact.name"], a["contact.company"], a["contact.position"] = c.contact.Name, c.contact.Company, c.contact.Position
		if c.idx < len(demoPeople) {
			a["contact.company_size"], a["contact.industry"] = p.Size, p.Industry
		}
		if c.contact.Email != "" {
			a["contact.email"] = c.contact.Email
		}
		if c.idx%4 == 1 && !c.existing { // the number to call back is another one
			mobile := fmt.Sprintf("+7916820%04d", c.idx)
			a["contact.callback_phone"] = mobile
			c.contact.Phones = append(c.contact.Phones, mobile)
		}
	}
	rec := &desk.Record{CallID: call.ID, Operator: call.Operator, ContactID: c.contact.ID, Line: call.Line,
		Script: call.Script, Step: "wrapup", PresetSource: sd.preset(call.Line), Answers: a, Updated: closed}
	if c.product != "" && (first || sd.rng.IntN(3) == 0) {
		a["price.product"] = c.product
		for _, p := range sd.cfg.DeskPrices() {
			if p.Product == c.product {
				rec.Range = &p
			}
		}
	}
	rec.SourceMismatch = rec.PresetSource != "" && c.source != rec.PresetSource
	w := &desk.Wrapup{Outcome: outcome, Reason: reason, Stage: stage, ClosedAt: closed, ClosedBy: call.Operator}
	if outcome == desk.OutcomeNotProspective {
		w.NotProspective = "company size " + a["contact.company_size"]
	}

	// The contact: created on the first call, the operator becomes his manager.
	if first {
		c.started = true
		if c.contact.Manager == "" {
			c.contact.Manager = call.Operator
		}
		if !c.existing {
			c.contact.Created = closed
		}
	}

	// The interest moves along the funnel.
	if moves {
		it := c.interest
		if it == nil {
			it = &desk.Interest{ID: fmt.Sprintf("demo-interest-%02d", c.idx), ContactID: c.contact.ID, Type: c.story.kind,
				Summary: c.need, Owner: c.contact.Manager, Stage: stFirst, State: "open", Created: closed}
			c.interest = it
		}
		if stage != "" {
			it.Stage = stage
		}
		switch {
		case outcome == desk.OutcomeRefusal:
			it.State, it.Reason = "lost", reason
			c.lost = true
		case outcome == desk.OutcomeNotProspective:
			it.State, it.Reason = "lost", desk.ReasonNotProspective
			c.lost = true
		case outcome == desk.OutcomeDeal && it.Stage == stPay:
			it.State = "won"
		}
		it.Updated = closed
		it.History = append(it.History, desk.StageChange{Stage: it.Stage, State: it.State, At: closed, By: call.Operator, CallID: call.ID})
	}
	if c.interest != nil {
		w.InterestID = c.interest.ID
	}

	// A meeting when the interest reaches that stage.
	if moves && stage == stMeeting && !c.lost {
		sd.meetings++
		day := closed.In(sd.loc).AddDate(0, 0, 1+sd.rng.IntN(4))
		mat := time.Date(day.Year(), day.Month(), day.Day(), []int{11, 15}[sd.rng.IntN(2)], 0, 0, 0, sd.loc)
		m := &desk.Meeting{ID: fmt.Sprintf("demo-meeting-%02d", sd.meetings), ContactID: c.contact.ID, CallID: call.ID,
			Owner: call.Operator, At: mat, Format: demoMeetingFormats[sd.meetings%len(demoMeetingFormats)], Created: closed}
		if err := sd.store.SaveMeeting(ctx, m); err != nil {
			return err
		}
		a["meeting.at"], a["meeting.format"] = mat.Format(time.RFC3339), m.Format
		w.MeetingID = m.ID
	}

	// A promise on a good share of calls, and always on the week's last ones, so
	// some are still open.
	if !c.lost && (lateInWeek || sd.rng.IntN(100) < 40) {
		p, err := sd.promise(ctx, c, call, closed, lateInWeek)
		if err != nil {
			return err
		}
		a["promise.what"], a["promise.due"] = p.What, p.Due.Format(time.RFC3339)
		w.PromiseID = p.ID
	}

	// A note on a third of calls.
	if sd.rng.IntN(3) == 0 {
		sd.notes++
		text := demoNotes[sd.rng.IntN(len(demoNotes))]
		w.Note, a["note"] = text, text
		if err := sd.store.AddNote(ctx, &desk.Note{ID: fmt.Sprintf("demo-note-%03d", sd.notes), ContactID: c.contact.ID,
			Text: text, By: call.Operator, CallID: call.ID, At: closed}); err != nil {
			return err
		}
	}

	rec.Wrapup = w
	rec.Ops = int64(len(a))
	if err := sd.store.SaveRecord(ctx, rec); err != nil {
		return err
	}
	// A caller who rang back got his callback, in effect.
	if cb := sd.openCallbacks[call.From]; cb != nil {
		kept := call.Started
		cb.State, cb.KeptAt, cb.Result = desk.PromiseKept, &kept, "Клиент перезвонил сам"
		cb.Notified = kept.After(cb.Due)
		if cb.Owner == "" {
			cb.Owner = call.Operator
		}
		if err := sd.store.SavePromise(ctx, cb); err != nil {
			return err
		}
		delete(sd.openCallbacks, call.From)
	}
	return sd.store.AddHistory(ctx, c.contact.ID, desk.CallSummary{CallID: call.ID, At: call.Started, Operator: call.Operator,
		Outcome: outcome, Seconds: int64(call.Ended.Sub(*call.Answered) / time.Second)})
}

// promise writes a promise made on call. Promises already due were kept on time,
// kept late or missed, in a fixed cycle so every state is there; the others are open.
func (sd *demoSeeder) promise(ctx context.Context, c *demoContactSeed, call *desk.Call, closed time.Time, lateInWeek bool) (*desk.Promise, error) {
	sd.promises++
	what := demoPromiseWhat[sd.rng.IntN(len(demoPromiseWhat))]
	due := closed.Add(time.Duration(60+sd.rng.IntN(60)) * time.Minute)
	if sd.rng.IntN(3) == 0 { // by 12:00 the next day
		d := closed.In(sd.loc).AddDate(0, 0, 1)
		due = time.Date(d.Year(), d.Month(), d.Day(), 12, 0, 0, 0, sd.loc)
	}
	if lateInWeek && !due.After(sd.now) {
		due = sd.now.Add(time.Duration(30+sd.rng.IntN(90)) * time.Minute)
	}
	p := &desk.Promise{ID: fmt.Sprintf("demo-promise-%03d", sd.promises), ContactID: c.contact.ID, Phone: call.From,
		CallID: call.ID, Owner: call.Operator, Kind: "promise", What: what, Due: due, Created: closed, State: desk.PromiseOpen}
	if due.Before(sd.now) {
		sd.pastDue++
		var kept time.Time
		switch sd.pastDue % 5 {
		case 0, 1, 3: // on time
			kept = due.Add(-time.Duration(5+sd.rng.IntN(40)) * time.Minute)
			if kept.Before(closed) {
				kept = closed.Add(5 * time.Minute)
			}
		case 2: // late
			kept = due.Add(time.Duration(20+sd.rng.IntN(180)) * time.Minute)
		}
		if !kept.IsZero() && kept.Before(sd.now) {
			p.State, p.KeptAt, p.Result = desk.PromiseKept, &kept, "Сделано"
		}
		p.Notified = p.State == desk.PromiseOpen || kept.After(due) // past due while open: raised already
	} else {
		sd.openAhead++
	}
	return p, sd.store.SavePromise(ctx, p)
}

// missedCall writes a missed or abandoned call, with its callback promise as
// Sales.CallMissed makes it, and the contact's history.
func (sd *demoSeeder) missedCall(ctx context.Context, s demoSlot) error {
	sd.calls++
	call := &desk.Call{ID: fmt.Sprintf("demo-call-%03d", sd.calls), Script: yamlfile.DefaultScriptID,
		State: desk.CallMissed, Started: s.at}
	var c *demoContactSeed
	var started []*demoContactSeed
	for _, x := range sd.contacts {
		if x.started {
			started = append(started, x)
		}
	}
	switch r := sd.rng.IntN(10); {
	case r < 6 && len(started) > 0:
		c = started[sd.rng.IntN(len(started))]
		call.From, call.FromDisplay, call.ContactID, call.Line = c.contact.Phones[0], c.contact.Name, c.contact.ID, c.line
	case r < 9:
		call.From = fmt.Sprintf("+7926%07d", sd.rng.IntN(10000000))
		call.Line = []string{"sales", "expo", desk.DefaultLine}[sd.rng.IntN(3)]
	default:
		call.From, call.Line = "anonymous", desk.DefaultLine
	}
	call.To = call.Line
	op := demoOperators[sd.rng.IntN(len(demoOperators))]
	if c != nil && c.contact.Manager != "" {
		op = c.contact.Manager
	}
	ring := s.at.Add(time.Second)
	var ended time.Time
	switch s.missed {
	case "abandoned":
		ended = ring.Add(time.Duration(4+sd.rng.IntN(14)) * time.Second)
		call.Operator, call.Reason = op, "cancelled"
		call.Attempts = []desk.Attempt{{Operator: op, Started: ring, Outcome: "cancelled", Status: 487}}
	case "timeout":
		call.Operator, call.Reason = other(op), "timeout"
		call.Attempts = []desk.Attempt{{Operator: op, Started: ring, Outcome: "timeout", Status: 408},
			{Operator: other(op), Started: ring.Add(20 * time.Second), Outcome: "timeout", Status: 408}}
		ended = ring.Add(40 * time.Second)
	default:
		call.Reason = "no operator"
		ended = ring
	}
	call.Ended = &ended
	if err := sd.store.SaveCall(ctx, call); err != nil {
		return err
	}
	if c != nil {
		if err := sd.store.AddHistory(ctx, c.contact.ID, desk.CallSummary{CallID: call.ID, At: call.Started,
			Operator: call.Operator, Outcome: "missed"}); err != nil {
			return err
		}
	}
	if call.From == "anonymous" || sd.openCallbacks[call.From] != nil {
		return nil
	}
	owner := ""
	if c != nil {
		owner = c.contact.Manager
	}
	due := ended.Add(desk.DefaultCallbackDue)
	p := &desk.Promise{ID: "cb-" + call.ID, Phone: call.From, CallID: call.ID, Owner: owner, Kind: "callback",
		What: "call back", Due: due, Created: ended, State: desk.PromiseOpen}
	if c != nil {
		p.ContactID = c.contact.ID
	}
	// Callbacks of the last hours are still open (some overdue); older ones were
	// kept, one in four late.
	if s.at.Before(sd.now.Add(-2 * time.Hour)) {
		kept := ended.Add(time.Duration(5+sd.rng.IntN(20)) * time.Minute)
		if sd.rng.IntN(4) == 0 {
			kept = due.Add(time.Duration(10+sd.rng.IntN(90)) * time.Minute)
		}
		p.State, p.KeptAt, p.Result = desk.PromiseKept, &kept, "Перезвонили"
		if p.Owner == "" {
			p.Owner = op
		}
		p.Notified = kept.After(due)
	} else {
		p.Notified = due.Before(sd.now)
		sd.openCallbacks[call.From] = p
	}
	return sd.store.SavePromise(ctx, p)
}
