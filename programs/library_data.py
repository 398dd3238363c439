"""The built-in exercise library and program templates, as plain data.

Facts and numbers come from the clinical source documents (see DESIGN.md
section 2); the wording is our own, written for older patients in pain who
read on a small phone: short sentences, simple words, second person.

This module must stay free of Django imports so that tests, fixtures and the
seeding command can all read it cheaply.

EXERCISES: one dict per exercise. "easier" / "harder" name other slugs.
TEMPLATES: one dict per built-in program, with one entry per phase in order
(acute, sub_acute, recovery, maintenance). At the default sessions per day,
each phase keeps the patient at or under 100 repetitions a day, because the
source warns that more than 100 a day may cause soreness.
"""

from __future__ import annotations

# --- Shared wording --------------------------------------------------------

_STOP_IF_SPREADS = (
    "Stop if the pain gets worse or spreads into your buttock or down your leg. "
    "Tell your therapist."
)
_NOT_IN_PREGNANCY = "Do not do this if you are pregnant. It means lying on your stomach."
_STENOSIS = "If you have spinal stenosis, get your doctor's OK before you start."
_FACET = (
    "Bending backward may not suit you if you have arthritis in your spine or "
    "facet joint problems. Ask your therapist first."
)
_MAX_100 = "Keep to 100 repetitions a day or fewer. More than that can leave you sore."
_CENTRALISING = "Pain that moves out of your leg and toward the middle of your back is a good sign."
_NO_RELIEF = "If you feel no better after two weeks, talk to your therapist."


EXERCISES: list[dict] = [
    # --- Extension, lying on the stomach (the main McKenzie ladder) --------
    {
        "slug": "prone-lying",
        "name": "Lying on your stomach",
        "summary": (
            "You rest flat on your stomach for a couple of minutes. It is the gentlest "
            "first step when back pain or leg pain has just started."
        ),
        "position": "prone",
        "direction": "extension",
        "level": "beginner",
        "steps": [
            "Find a firm, flat place, such as a mat on the floor.",
            "Lie down with your tummy on the mat and your face down.",
            "Put your arms by your sides, or fold them under your forehead.",
            "You can rest your head turned to the side if you like.",
            "Let your whole body go loose and heavy.",
            "Breathe slowly and stay like this for about 2 minutes.",
            "To get up, roll onto your side first, then push yourself up.",
        ],
        "cues": [
            "Each time you breathe out, let your lower back sink a little more.",
            "If lying flat hurts, slide a pillow under your tummy.",
            "A rolled towel under your forehead can ease your neck.",
            _CENTRALISING,
        ],
        "common_mistakes": [
            "Lying on a soft bed or sofa. Use a firm surface.",
            "Squeezing your back or bottom muscles instead of letting go.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _NOT_IN_PREGNANCY,
            _STENOSIS,
        ],
        "default_reps": 1,
        "default_hold_seconds": 120,
        "default_rest_seconds": 0,
        "easier": None,
        "harder": "prone-prop-elbows",
        "sort_order": 10,
    },
    {
        "slug": "prone-prop-elbows",
        "name": "Propped on your elbows",
        "summary": (
            "Lying on your stomach, you rest your upper body on your forearms. It is the "
            "gentlest backward bend and the place to start before press-ups."
        ),
        "position": "prone",
        "direction": "extension",
        "level": "beginner",
        "steps": [
            "Lie face down on a firm surface.",
            "Put your elbows under your shoulders, forearms flat, palms down.",
            "Breathe out and slowly lift your chest onto your forearms.",
            "Keep your hips and legs flat on the floor.",
            "Let your lower back relax and sag gently.",
            "Stay up for about 10 seconds while you breathe slowly.",
            "Lower yourself down slowly and rest for a few seconds.",
            "Do this 10 times.",
        ],
        "cues": [
            "Your arms hold you up. Your back stays soft.",
            "Keep your neck long and look at the floor just ahead of you.",
            "Keep your shoulders wide, away from your ears.",
            "As it gets easier, stay up longer, up to 30 seconds.",
            _CENTRALISING,
        ],
        "common_mistakes": [
            "Tightening your back muscles. Let your back stay loose.",
            "Letting your hips come up off the floor.",
            "Hunching your shoulders up to your ears.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            "If pain stops you from propping up, rest for 1 or 2 days, then try again.",
            _NOT_IN_PREGNANCY,
            _STENOSIS,
            _FACET,
        ],
        "default_reps": 10,
        "default_hold_seconds": 10,
        "default_rest_seconds": 3,
        "easier": "prone-lying",
        "harder": "prone-press-up",
        "sort_order": 20,
    },
    {
        "slug": "prone-press-up",
        "name": "Press-up",
        "summary": (
            "Lying on your stomach, you push your chest up with straight arms while your "
            "hips stay down. It is the main exercise for back pain that eases when you "
            "bend backward."
        ),
        "position": "prone",
        "direction": "extension",
        "level": "intermediate",
        "steps": [
            "Lie face down on a firm surface, not a bed or sofa.",
            "Place your palms on the floor, right below your shoulders.",
            "Take a slow breath in.",
            "Breathe out as you push your chest and shoulders up with your arms.",
            "Keep your hips on the floor the whole time.",
            "Straighten your arms only as far as feels comfortable.",
            "Stay at the top for about 10 seconds and keep breathing.",
            "Lower yourself slowly, counting to 3 on the way down.",
            "Rest for 2 or 3 seconds, then push up again.",
            "Do 10 in total.",
        ],
        "cues": [
            "Let your arms do the lifting. Your back stays loose and floppy.",
            "Try to go a little higher each time, if it feels all right.",
            "Rest your toes on the floor, pointing back. It helps keep your hips down.",
            "If you feel a pinch or more pain, push up less far, or go back to the elbow version.",
            "To get up after: push up once more, bring one knee forward, then the other.",
        ],
        "common_mistakes": [
            "Lifting your hips. They must stay on the floor.",
            "Tightening your back muscles.",
            "Going too high too soon. A small lift still helps.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _NOT_IN_PREGNANCY,
            _STENOSIS,
            _FACET,
            _MAX_100,
        ],
        "default_reps": 10,
        "default_hold_seconds": 10,
        "default_rest_seconds": 3,
        "easier": "prone-prop-elbows",
        "harder": "full-mckenzie-extension",
        "sort_order": 30,
    },
    {
        "slug": "full-mckenzie-extension",
        "name": "Full press-up",
        "summary": (
            "A bigger press-up with a longer hold and a deeper arch. Move on to it only "
            "when the ordinary press-up feels easy."
        ),
        "position": "prone",
        "direction": "extension",
        "level": "advanced",
        "steps": [
            "Lie face down on a firm surface with your hands under your shoulders.",
            "Breathe out and push your chest up with your arms.",
            "Keep your hips on the floor.",
            "Straighten your arms fully so your back arches as far as is comfortable.",
            "Let your head tip back a little.",
            "Stay at the top for 15 to 20 seconds and breathe normally.",
            "Lower yourself slowly.",
            "Rest for a few seconds, then push up again.",
            "Do 15 in total.",
        ],
        "cues": [
            "Let your lower back sag like a hammock.",
            "Keep your bottom and back muscles relaxed.",
            "Tip your head back only a little. Do not strain your neck.",
            "Keep breathing the whole time.",
            "If this hurts more, go back to the ordinary press-up.",
        ],
        "common_mistakes": [
            "Letting your hips lift off the floor.",
            "Squeezing your bottom or back muscles.",
            "Jerking up fast instead of pushing up smoothly.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _NOT_IN_PREGNANCY,
            _STENOSIS,
            _FACET,
            _MAX_100,
        ],
        "default_reps": 15,
        "default_hold_seconds": 15,
        "default_rest_seconds": 3,
        "easier": "prone-press-up",
        "harder": None,
        "sort_order": 40,
    },
    {
        "slug": "press-up-hips-off-centre",
        "name": "Press-up with hips to one side",
        "summary": (
            "A press-up with your hips moved over to one side. Your therapist may give it "
            "to you for one-sided pain when the ordinary press-up does not help."
        ),
        "position": "prone",
        "direction": "extension",
        "level": "intermediate",
        "steps": [
            "Lie face down on a firm surface.",
            "Shift your hips over to one side, most often away from the side that hurts.",
            "Move your feet the other way, so your body makes a gentle curve.",
            "Put your hands flat under your shoulders.",
            "Breathe out and push your chest up, keeping your hips on the floor.",
            "Go as high as you comfortably can and stay for about 10 seconds.",
            "Lower yourself slowly and rest for a few seconds.",
            "Do this 10 times.",
        ],
        "cues": [
            "Your therapist will tell you which way to move your hips.",
            "It may feel odd at first. That is normal.",
            "Keep your back loose and let your arms do the work.",
            _CENTRALISING,
        ],
        "common_mistakes": [
            "Letting your hips drift back to the middle.",
            "Lifting your hips as you push up.",
            "Tightening your back muscles.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _NOT_IN_PREGNANCY,
            _STENOSIS,
            _FACET,
            _MAX_100,
        ],
        "default_reps": 10,
        "default_hold_seconds": 10,
        "default_rest_seconds": 3,
        "easier": "prone-prop-elbows",
        "harder": "prone-press-up",
        "sort_order": 50,
    },
    # --- Extension, upright (anywhere, or when you cannot get on the floor) -
    {
        "slug": "standing-extension",
        "name": "Standing back bend",
        "summary": (
            "You stand and lean backward with your hands on your lower back. You can do it "
            "anywhere, and it is good after sitting or bending for a long time."
        ),
        "position": "standing",
        "direction": "extension",
        "level": "intermediate",
        "steps": [
            "Stand tall with your feet about as wide as your shoulders.",
            "Put both hands on your lower back, fingers pointing down.",
            "Slowly lean back as far as is comfortable.",
            "Stay there for about 3 seconds.",
            "Come back up until you stand straight again.",
            "Do this 10 times.",
        ],
        "cues": [
            "Use your hands as the point you bend back over.",
            "Breathe out as you lean back.",
            "Try it whenever you stand up after a long sit.",
            "Keep your neck relaxed and let your head follow your back.",
        ],
        "common_mistakes": [
            "Bending your knees instead of your back.",
            "Leaning back too fast.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _STENOSIS,
            _FACET,
            "If your balance is poor, use the wall version instead.",
        ],
        "default_reps": 10,
        "default_hold_seconds": 3,
        "default_rest_seconds": 2,
        "easier": "wall-extension",
        "harder": None,
        "sort_order": 60,
    },
    {
        "slug": "wall-extension",
        "name": "Back bend against a wall",
        "summary": (
            "A supported backward bend, standing with your back to a wall. It suits you if "
            "your balance is unsure or you cannot get down onto the floor."
        ),
        "position": "standing",
        "direction": "extension",
        "level": "beginner",
        "steps": [
            "Stand with your back to a wall, heels about 1 foot (30 cm) away from it.",
            "Put both hands on your lower back.",
            "Slowly lean back until your shoulders rest on the wall.",
            "Ease your hips forward so your lower back arches.",
            "Stay there for about 3 seconds and breathe.",
            "Press your shoulders into the wall to come back up straight.",
            "Do this 10 times.",
        ],
        "cues": [
            "The wall is there to catch you, so you can relax.",
            "Move slowly.",
            "Arch only as far as is comfortable.",
        ],
        "common_mistakes": [
            "Standing so far from the wall that you fall back onto it.",
            "Bending your knees instead of your back.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _STENOSIS,
            _FACET,
        ],
        "default_reps": 10,
        "default_hold_seconds": 3,
        "default_rest_seconds": 2,
        "easier": None,
        "harder": "standing-extension",
        "sort_order": 70,
    },
    {
        "slug": "chair-extension",
        "name": "Back bend in a chair",
        "summary": (
            "You sit in a firm chair and arch backward over its backrest. It is a gentle "
            "choice if you cannot lie on the floor or stand for long."
        ),
        "position": "sitting",
        "direction": "extension",
        "level": "beginner",
        "steps": [
            "Use a sturdy chair with a firm back and no wheels.",
            "Sit up tall with your back against the backrest and your feet flat.",
            "Cross your arms over your chest.",
            "Slowly lean back over the top of the backrest.",
            "Let your back arch gently over it.",
            "Stay there for about 3 seconds and breathe.",
            "Sit up straight again.",
            "Do this 10 times.",
        ],
        "cues": [
            "Keep both feet flat on the floor.",
            "Move slowly.",
            "Let your head follow your back. Do not throw it back.",
            "If the top of the backrest digs in, put a small cushion there.",
        ],
        "common_mistakes": [
            "Using a chair that rocks, tips or rolls.",
            "Leaning back too far.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _STENOSIS,
            _FACET,
        ],
        "default_reps": 10,
        "default_hold_seconds": 3,
        "default_rest_seconds": 2,
        "easier": None,
        "harder": "standing-extension",
        "sort_order": 80,
    },
    # --- Side glide and rotation (one-sided pain) --------------------------
    {
        "slug": "standing-side-glide",
        "name": "Side glide at a wall",
        "summary": (
            "Standing side-on to a wall, you slide your hips toward it. It is for pain "
            "mostly on one side of your back or in one leg."
        ),
        "position": "standing",
        "direction": "lateral",
        "level": "beginner",
        "steps": [
            "Stand side-on to a wall, 1 to 2 feet (30 to 60 cm) away, feet together.",
            "Lean your shoulder on the wall.",
            "Bend that elbow and tuck it against your ribs.",
            "Put your other hand on the outside of your hip.",
            "Gently push your hips toward the wall, so they slide under your ribs.",
            "Hold for a moment, then let your hips come back.",
            "Do this 10 times.",
        ],
        "cues": [
            "Your therapist will tell you which side should face the wall.",
            "Your hips slide sideways. Your shoulders stay still.",
            "Move slowly and smoothly.",
            _CENTRALISING,
            "When this goes well, try the press-up again.",
        ],
        "common_mistakes": [
            "Twisting your body instead of sliding your hips.",
            "Bending forward at the waist.",
            "Standing too far from the wall.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _NO_RELIEF,
        ],
        "default_reps": 10,
        "default_hold_seconds": 2,
        "default_rest_seconds": 2,
        "easier": None,
        "harder": "prone-press-up",
        "sort_order": 90,
    },
    {
        "slug": "flexion-rotation",
        "name": "Side-lying twist",
        "summary": (
            "You lie on your side and turn your top shoulder back toward the floor. It can "
            "help pain on one side of your back or pain that runs down one leg."
        ),
        "position": "side_lying",
        "direction": "rotation",
        "level": "intermediate",
        "steps": [
            "Lie on your side, most often the side that hurts more.",
            "Bend your knees a little.",
            "Now straighten the leg that is underneath.",
            "Hook your top foot behind the knee of your bottom leg.",
            "Reach your top hand back to your shoulder blade.",
            "Slowly turn your top shoulder back toward the floor.",
            "Hold for a moment and feel the stretch in your back.",
            "Turn back to the start.",
            "Do this 10 times.",
        ],
        "cues": [
            "Your therapist will tell you which side to lie on.",
            "Your hips stay put while your shoulder turns.",
            "Breathe out as you turn.",
            "Put a pillow under your head.",
        ],
        "common_mistakes": [
            "Turning too fast or too far.",
            "Letting your top foot slip off your bottom knee.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            _NO_RELIEF,
        ],
        "default_reps": 10,
        "default_hold_seconds": 2,
        "default_rest_seconds": 2,
        "easier": None,
        "harder": None,
        "sort_order": 100,
    },
    # --- Flexion (forward bending) ladder ----------------------------------
    {
        "slug": "supine-knee-to-chest",
        "name": "Knees to chest",
        "summary": (
            "You lie on your back and hug your knees toward your chest. It is the first "
            "forward-bending exercise, for back pain that eases when you bend forward."
        ),
        "position": "supine",
        "direction": "flexion",
        "level": "beginner",
        "steps": [
            "Lie on your back, knees bent, feet flat on the floor.",
            "Slowly bring your knees up toward your chest.",
            "Hold your knees with your hands.",
            "Pull them gently a little closer.",
            "Hold for 1 or 2 seconds.",
            "Let go and put your feet back down.",
            "Do this 10 times.",
        ],
        "cues": [
            "Keep your head resting on the floor or a pillow.",
            "Breathe out as you pull your knees in.",
            "It should feel like a stretch, not a pain.",
        ],
        "common_mistakes": [
            "Lifting your head and shoulders off the floor.",
            "Pulling hard or bouncing.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            "If you are pregnant, ask your midwife or doctor before lying flat on your back.",
        ],
        "default_reps": 10,
        "default_hold_seconds": 2,
        "default_rest_seconds": 2,
        "easier": None,
        "harder": "seated-flexion",
        "sort_order": 110,
    },
    {
        "slug": "seated-flexion",
        "name": "Bending forward in a chair",
        "summary": (
            "You sit on a chair and bend forward toward the floor. It is the next step after "
            "knees to chest."
        ),
        "position": "sitting",
        "direction": "flexion",
        "level": "intermediate",
        "steps": [
            "Sit on a sturdy chair with your feet flat and apart.",
            "Slowly bend forward and reach down toward the floor.",
            "When you are bent right over, hold your ankles.",
            "Pull gently to bend a little further.",
            "Hold for 1 or 2 seconds.",
            "Slowly sit back up.",
            "Do this 10 times.",
        ],
        "cues": [
            "Let your head and neck hang loose.",
            "Breathe out as you go down.",
            "Sit up slowly so you do not get dizzy.",
        ],
        "common_mistakes": [
            "Using a chair with wheels.",
            "Sitting up too fast.",
            "Pulling hard on your ankles.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            "If you feel dizzy, sit up slowly and rest.",
        ],
        "default_reps": 10,
        "default_hold_seconds": 2,
        "default_rest_seconds": 2,
        "easier": "supine-knee-to-chest",
        "harder": "standing-flexion",
        "sort_order": 120,
    },
    {
        "slug": "standing-flexion",
        "name": "Bending forward standing",
        "summary": (
            "You stand and bend forward from the waist. It is the last and hardest step of "
            "the forward-bending exercises."
        ),
        "position": "standing",
        "direction": "flexion",
        "level": "advanced",
        "steps": [
            "Stand with your feet about as wide as your shoulders.",
            "Slowly fold forward from the waist, only as far as is comfortable.",
            "Let your arms hang down toward the floor.",
            "Hold for 1 or 2 seconds.",
            "Slowly come back up to standing.",
            "Do this 10 times.",
        ],
        "cues": [
            "Breathe out as you bend down.",
            "Let your head hang.",
            "Stand near something steady you can hold if you need it.",
        ],
        "common_mistakes": [
            "Bouncing at the bottom.",
            "Coming up too fast.",
            "Holding your breath.",
        ],
        "precautions": [
            _STOP_IF_SPREADS,
            "If you feel dizzy, stop and sit down.",
        ],
        "default_reps": 10,
        "default_hold_seconds": 2,
        "default_rest_seconds": 2,
        "easier": "seated-flexion",
        "harder": None,
        "sort_order": 130,
    },
]


def _rx(exercise: str, reps: int, hold_seconds: int, rest_seconds: int, sets: int = 1) -> dict:
    return {
        "exercise": exercise,
        "reps": reps,
        "hold_seconds": hold_seconds,
        "rest_seconds": rest_seconds,
        "sets": sets,
    }


TEMPLATES: list[dict] = [
    {
        "slug": "mckenzie-extension",
        "name": "McKenzie extension program",
        "description": (
            "A step-by-step backward-bending program for back or leg pain that eases with "
            "extension, such as a disc problem whose pain centralises. It starts with lying "
            "flat and propping on the elbows, then moves on to press-ups. Not for pregnancy; "
            "check spinal stenosis, spinal arthritis and facet joint problems first."
        ),
        "bias": "extension",
        "phases": [
            {
                "phase": "acute",
                "default_sessions_per_day": 8,
                "notes": (
                    "While the pain is new, usually 3 to 5 days. Do a session every 1 to 2 "
                    "hours. Start gently: on a bad day, 5 prop-ups are enough."
                ),
                "exercises": [
                    _rx("prone-lying", 1, 120, 0),
                    _rx("prone-prop-elbows", 10, 10, 3),
                ],
            },
            {
                "phase": "sub_acute",
                "default_sessions_per_day": 5,
                "notes": (
                    "Usually 1 to 2 weeks. Warm up on your elbows, then do press-ups. Go a "
                    "little higher each time if it feels all right."
                ),
                "exercises": [
                    _rx("prone-prop-elbows", 10, 10, 3),
                    _rx("prone-press-up", 10, 10, 3),
                ],
            },
            {
                "phase": "recovery",
                "default_sessions_per_day": 3,
                "notes": (
                    "Usually 2 to 4 weeks. Press-ups on the floor, and the standing back "
                    "bend after you have been sitting."
                ),
                "exercises": [
                    _rx("prone-press-up", 10, 10, 3),
                    _rx("standing-extension", 10, 3, 2),
                ],
            },
            {
                "phase": "maintenance",
                "default_sessions_per_day": 2,
                "notes": (
                    "Ongoing, to keep your back well. Full press-ups morning and evening, "
                    "and a standing back bend after long sitting."
                ),
                "exercises": [
                    _rx("full-mckenzie-extension", 15, 15, 3),
                    _rx("standing-extension", 10, 3, 2),
                ],
            },
        ],
    },
    {
        "slug": "flexion-bias",
        "name": "Forward-bending (flexion) program",
        "description": (
            "A forward-bending program for patients whom extension does not suit, such as "
            "spinal stenosis, spinal arthritis or facet joint problems. It has no exercises "
            "lying on the stomach. In later pregnancy, check that lying on the back is "
            "advised. Therapists often follow flexion with an extension exercise; add one "
            "only if it suits the patient."
        ),
        "bias": "flexion",
        "phases": [
            {
                "phase": "acute",
                "default_sessions_per_day": 8,
                "notes": (
                    "While the pain is new, usually 3 to 5 days. Do a session every 1 to 2 "
                    "hours, lying on your back."
                ),
                "exercises": [
                    _rx("supine-knee-to-chest", 10, 2, 2),
                ],
            },
            {
                "phase": "sub_acute",
                "default_sessions_per_day": 5,
                "notes": "Usually 1 to 2 weeks. Knees to chest, then bending forward in a chair.",
                "exercises": [
                    _rx("supine-knee-to-chest", 10, 2, 2),
                    _rx("seated-flexion", 10, 2, 2),
                ],
            },
            {
                "phase": "recovery",
                "default_sessions_per_day": 3,
                "notes": (
                    "Usually 2 to 4 weeks. Bend forward sitting, then standing, and add the "
                    "side-lying twist."
                ),
                "exercises": [
                    _rx("seated-flexion", 10, 2, 2),
                    _rx("standing-flexion", 10, 2, 2),
                    _rx("flexion-rotation", 10, 2, 2),
                ],
            },
            {
                "phase": "maintenance",
                "default_sessions_per_day": 2,
                "notes": "Ongoing, to keep your back moving well. Twice a day is enough.",
                "exercises": [
                    _rx("standing-flexion", 10, 2, 2),
                    _rx("flexion-rotation", 10, 2, 2),
                ],
            },
        ],
    },
]
